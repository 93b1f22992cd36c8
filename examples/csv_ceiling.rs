//! The parse ceiling for the benchmark: read a CSV file with the `csv` crate and touch
//! every field, doing nothing else. flowctl cannot be faster than this on CSV input.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: csv_ceiling FILE.csv")?;
    let file = std::fs::File::open(&path)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).buffer_capacity(256 * 1024).from_reader(file);
    let mut row = csv::ByteRecord::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    while reader.read_byte_record(&mut row)? {
        rows += 1;
        bytes += row.iter().map(|f| f.len() as u64).sum::<u64>();
    }
    println!("{rows} rows, {bytes} field bytes");
    Ok(())
}
