//! CSV rows off a byte stream, exactly as the `csv` crate reads them with
//! `flexible(true)` and no header handling (the same fields, the same byte offsets and
//! line numbers), but faster on plain lines: a line that holds no quote and no `\r`
//! is split at its delimiters in one pass over its bytes; every other record (quoted
//! fields, `\r` endings, the first record, which may start with a byte-order mark)
//! goes through `csv_core`'s state machine, as the `csv` crate does for all of them.
//! A differential property test holds the two readers equal.

use std::io::Read;

/// One record's fields: field i is `data[starts[i]..ends[i]]` (a plain line is kept
/// whole, delimiters included; `csv_core` writes fields back to back).
#[derive(Default)]
pub struct Row {
    data: Vec<u8>,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl Row {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        Some(&self.data[*self.starts.get(i)?..*self.ends.get(i)?])
    }

    /// Where field i lies in [`Row::bytes`].
    pub fn range(&self, i: usize) -> Option<std::ops::Range<usize>> {
        Some(*self.starts.get(i)?..*self.ends.get(i)?)
    }

    /// The bytes the fields are slices of (validate UTF-8 once for the whole row).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    fn clear(&mut self) {
        self.data.clear();
        self.starts.clear();
        self.ends.clear();
    }
}

/// Where the reader is: bytes consumed and the current line (1-based), as
/// `csv::Position` counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub byte: u64,
    pub line: u64,
}

pub struct CsvRows<R> {
    reader: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// The state machine, built when a record first needs it (building one takes
    /// longer than splitting a small block's plain lines).
    core: Option<Box<csv_core::Reader>>,
    delimiter: u8,
    quote: u8,
    /// Where in `buf` the next quote or `\r` at or after `start` is (`usize::MAX`:
    /// none before `end`); None when unknown (after a refill or past it).
    special_at: Option<usize>,
    position: Position,
    /// The position before the last record (and the empty lines skipped before it).
    record_start: Position,
    /// True when the last byte consumed ended a line, so that `csv_core` is between
    /// records and the next line may take the fast path.
    at_line_start: bool,
    done: bool,
    /// The last record ran to the end of the input inside a quoted field.
    unterminated: bool,
    /// The longest record, in bytes (the source's `max_line_length`).
    max_line: u64,
    /// `buf[start..newline_free]` holds no newline (when `newline_free` > `start`): a
    /// long line arriving in small reads (a socket, a pipe) is searched once, not
    /// again from its start after every read.
    newline_free: usize,
}

/// The `csv_core` state machine in `core`, built there first if need be.
fn core_of(core: &mut Option<Box<csv_core::Reader>>, delimiter: u8, quote: u8) -> &mut csv_core::Reader {
    core.get_or_insert_with(|| Box::new(csv_core::ReaderBuilder::new().delimiter(delimiter).quote(quote).build()))
}

impl CsvRows<std::io::Cursor<Vec<u8>>> {
    /// Rows of `bytes` (a block of a file), split where they lie instead of being
    /// copied into a buffer of the reader's own. A block that does not start its file
    /// starts on a record boundary with no byte-order mark: plain lines take the fast
    /// path from its first one.
    pub fn in_place(bytes: Vec<u8>, at_file_start: bool, delimiter: u8, quote: u8) -> Self {
        let end = bytes.len();
        let nothing_more = std::io::Cursor::new(Vec::new());
        let mut rows = CsvRows::with_buffer(nothing_more, bytes, delimiter, quote);
        rows.end = end;
        rows.eof = true;
        rows.at_line_start = !at_file_start;
        rows
    }

    /// The block's bytes, for reading another block into.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

impl<R: Read> CsvRows<R> {
    pub fn new(reader: R, capacity: usize, delimiter: u8, quote: u8) -> Self {
        CsvRows::with_buffer(reader, vec![0; capacity.max(1024)], delimiter, quote)
    }

    fn with_buffer(reader: R, buf: Vec<u8>, delimiter: u8, quote: u8) -> Self {
        let start = Position { byte: 0, line: 1 };
        CsvRows {
            reader,
            buf,
            start: 0,
            end: 0,
            eof: false,
            core: None,
            delimiter,
            quote,
            special_at: None,
            position: start,
            record_start: start,
            at_line_start: false,
            done: false,
            unterminated: false,
            max_line: u64::MAX,
            newline_free: 0,
        }
    }

    /// Refuses records longer than `bytes` with a [`super::decode::LineTooLong`] error.
    pub fn with_max_line(mut self, bytes: u64) -> Self {
        self.max_line = bytes;
        self
    }

    /// The error for the record at `line` (counted from this reader's start).
    fn too_long(&self, line: u64) -> std::io::Error {
        super::decode::LineTooLong { line, limit: self.max_line }.into()
    }

    /// The position after the last record read.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The position before the last record read (where the `csv` crate's
    /// `ByteRecord::position` points).
    pub fn record_start(&self) -> Position {
        self.record_start
    }

    /// True when the record just read was ended by the end of the input inside a
    /// quoted field: a quote that never closes swallowed the rest of the input.
    pub fn unterminated_quote(&self) -> bool {
        self.unterminated
    }

    /// Reads the next record into `row`; false at the end of the input.
    pub fn read(&mut self, row: &mut Row) -> std::io::Result<bool> {
        row.clear();
        self.unterminated = false;
        self.record_start = self.position;
        if self.done {
            return Ok(false);
        }
        loop {
            if !self.at_line_start {
                return self.read_with_core(row);
            }
            match self.fast_line(row) {
                Line::Record => return Ok(true),
                Line::Skipped => continue,
                Line::Special => return self.read_with_core(row),
                Line::TooLong => return Err(self.too_long(self.position.line)),
                Line::NeedInput => {
                    if self.eof {
                        if self.start == self.end {
                            self.done = true;
                            return Ok(false);
                        }
                        // A last line without a newline: the state machine ends it.
                        return self.read_with_core(row);
                    }
                    self.refill()?;
                }
            }
        }
    }

    /// Splits the next complete line if it is plain.
    fn fast_line(&mut self, row: &mut Row) -> Line {
        let unread = &self.buf[self.start..self.end];
        let from = self.newline_free.saturating_sub(self.start).min(unread.len());
        let Some(newline) = memchr::memchr(b'\n', &unread[from..]).map(|i| from + i) else {
            self.newline_free = self.end;
            return if unread.len() as u64 > self.max_line { Line::TooLong } else { Line::NeedInput };
        };
        if newline as u64 > self.max_line {
            return Line::TooLong;
        }
        let special = match self.special_at {
            Some(at) if at >= self.start => at,
            _ => {
                let at = memchr::memchr2(self.quote, b'\r', unread).map_or(usize::MAX, |i| self.start + i);
                self.special_at = Some(at);
                at
            }
        };
        if special < self.start + newline {
            return Line::Special;
        }
        let line = &unread[..newline];
        self.start += newline + 1;
        self.position.byte += newline as u64 + 1;
        self.position.line += 1;
        if line.is_empty() {
            return Line::Skipped;
        }
        row.data.extend_from_slice(line);
        row.starts.push(0);
        for i in Delimiters::new(line, self.delimiter) {
            row.ends.push(i);
            row.starts.push(i + 1);
        }
        row.ends.push(line.len());
        Line::Record
    }

    fn core(&mut self) -> &mut csv_core::Reader {
        core_of(&mut self.core, self.delimiter, self.quote)
    }

    /// One record through `csv_core`, refilling the buffer as it asks.
    fn read_with_core(&mut self, row: &mut Row) -> std::io::Result<bool> {
        use csv_core::ReadRecordResult;
        let line = self.position.line;
        self.core().set_line(line);
        let (mut out_len, mut ends_len) = (0, 0);
        if row.data.len() < 1024 {
            row.data.resize(1024, 0);
        }
        if row.ends.len() < 16 {
            row.ends.resize(16, 0);
        }
        // Quote bytes of this record: an odd count when the input ends means a
        // quoted field never closed (doubled quotes inside one come in pairs).
        let mut quotes = 0usize;
        loop {
            if self.start == self.end && !self.eof {
                self.refill()?;
            }
            let input = &self.buf[self.start..self.end];
            let ended = input.is_empty();
            let (result, nin, nout, nend) = core_of(&mut self.core, self.delimiter, self.quote).read_record(
                input,
                &mut row.data[out_len..],
                &mut row.ends[ends_len..],
            );
            if nin > 0 {
                self.at_line_start = input[nin - 1] == b'\n';
                quotes += memchr::memchr_iter(self.quote, &input[..nin]).count();
            }
            self.start += nin;
            self.position.byte += nin as u64;
            self.position.line = self.core().line();
            out_len += nout;
            ends_len += nend;
            if (out_len as u64) > self.max_line {
                return Err(self.too_long(self.record_start.line));
            }
            match result {
                // More input, or (at the end) an empty input, which tells csv_core
                // that the input ended: it then answers Record or End.
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::OutputFull => {
                    let n = row.data.len() * 2;
                    row.data.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = row.ends.len() * 2;
                    row.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    // A record ended only by the end of the input, with a quote open.
                    self.unterminated = ended && quotes % 2 == 1;
                    row.data.truncate(out_len);
                    row.ends.truncate(ends_len);
                    row.starts.clear();
                    row.starts.push(0);
                    row.starts.extend_from_slice(&row.ends[..ends_len.saturating_sub(1)]);
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    row.clear();
                    self.done = true;
                    return Ok(false);
                }
            }
        }
    }

    /// Moves the unread bytes to the front and reads more after them (growing the
    /// buffer when a line is longer than it).
    fn refill(&mut self) -> std::io::Result<()> {
        self.special_at = None;
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.newline_free = self.newline_free.saturating_sub(self.start);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

enum Line {
    Record,
    Skipped,
    /// The line holds a quote or `\r`: the state machine reads this record.
    Special,
    /// No complete line is buffered.
    NeedInput,
    /// The line is longer than `max_line`.
    TooLong,
}

/// The positions of a byte in a short slice (a CSV line's delimiters), found eight
/// bytes at a time: faster than a byte loop's unpredictable branches, and without
/// the setup of a vector search, which lines of a few dozen bytes do not repay.
struct Delimiters<'a> {
    words: std::slice::ChunksExact<'a, u8>,
    /// Bit 8k+7 set where byte k of the current word is the delimiter.
    found: u64,
    /// Where the current word starts, and the next.
    base: usize,
    next_base: usize,
    pattern: u64,
    delimiter: u8,
    tail: std::iter::Enumerate<std::slice::Iter<'a, u8>>,
}

impl<'a> Delimiters<'a> {
    fn new(line: &'a [u8], delimiter: u8) -> Delimiters<'a> {
        let words = line.chunks_exact(8);
        let tail = words.remainder().iter().enumerate();
        let pattern = u64::from_ne_bytes([delimiter; 8]);
        Delimiters { words, found: 0, base: 0, next_base: 0, pattern, delimiter, tail }
    }
}

impl Iterator for Delimiters<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        while self.found == 0 {
            let Some(word) = self.words.next() else {
                let (start, delimiter) = (self.next_base, self.delimiter);
                return self.tail.find(|(_, &b)| b == delimiter).map(|(i, _)| start + i);
            };
            let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) ^ self.pattern;
            // An exact zero-byte test (no borrow runs between bytes): the high bit of
            // each byte of x that is zero, i.e. of each delimiter.
            self.found = !(((x & LOW7) + LOW7) | x | LOW7);
            self.base = self.next_base;
            self.next_base += 8;
        }
        let at = self.base + (self.found.trailing_zeros() / 8) as usize;
        self.found &= self.found - 1;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Read = (Vec<Vec<u8>>, (u64, u64), (u64, u64));

    fn with_csv_crate(input: &[u8], capacity: usize) -> Vec<Read> {
        let mut reader =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).buffer_capacity(capacity).from_reader(input);
        let mut row = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut row).unwrap() {
            let before = row.position().map(|p| (p.byte(), p.line())).unwrap_or_default();
            let after = (reader.position().byte(), reader.position().line());
            out.push((row.iter().map(<[u8]>::to_vec).collect(), before, after));
        }
        out
    }

    fn with_csv_rows(input: &[u8], capacity: usize) -> Vec<Read> {
        rows_of(CsvRows::new(input, capacity, b',', b'"'))
    }

    fn rows_of<R: std::io::Read>(mut reader: CsvRows<R>) -> Vec<Read> {
        let mut row = Row::default();
        let mut out = Vec::new();
        while reader.read(&mut row).unwrap() {
            let (before, after) = (reader.record_start(), reader.position());
            out.push((row.iter().map(<[u8]>::to_vec).collect(), (before.byte, before.line), (after.byte, after.line)));
        }
        out
    }

    proptest! {
        #[test]
        fn delimiters_are_found_where_a_byte_loop_finds_them(
            line in proptest::collection::vec(prop_oneof![3 => any::<u8>(), 1 => Just(b';'), 1 => Just(b';' ^ 0x80)], 0..80),
        ) {
            let expected: Vec<usize> = line.iter().enumerate().filter(|(_, &b)| b == b';').map(|(i, _)| i).collect();
            prop_assert_eq!(Delimiters::new(&line, b';').collect::<Vec<_>>(), expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn reads_what_the_csv_crate_reads(
            bytes in proptest::collection::vec(prop_oneof![
                4 => Just(b'a'), 2 => Just(b','), 2 => Just(b'\n'), 1 => Just(b'"'), 1 => Just(b'\r'),
                1 => Just(b' '), 1 => Just(0xef), 1 => Just(0xbb), 1 => Just(0xbf),
            ], 0..200),
            capacity in 1usize..64,
        ) {
            // csv-core strips a BOM only when all of it is in its first buffer, and takes a buffer the
            // BOM empties for the end of input, so the oracle gets at least four bytes; our reader
            // strips it at any capacity.
            prop_assert_eq!(with_csv_rows(&bytes, capacity), with_csv_crate(&bytes, capacity.max(4)));
            // A whole file in memory, read in place.
            let in_place = rows_of(CsvRows::in_place(bytes.clone(), true, b',', b'"'));
            prop_assert_eq!(in_place, with_csv_crate(&bytes, bytes.len().max(4)));
        }
    }

    #[test]
    fn a_block_after_the_start_of_a_file_takes_the_fast_path_from_its_first_line() {
        // Blocks start on record boundaries; bytes that would be a byte-order mark at the
        // start of a file are data here, as they are to the csv crate after a first line.
        for block in [&b"1,2\n3,4\n"[..], b"\xef\xbb\xbfx,y\n", b"q,\"a\nb\"\n5,6", b"\n\nlast"] {
            let mut file = b"h,h\n".to_vec();
            file.extend_from_slice(block);
            let mut expected = with_csv_crate(&file, 1 << 16);
            expected.remove(0);
            let shift = |(fields, (b0, l0), (b1, l1)): Read| (fields, (b0 - 4, l0 - 1), (b1 - 4, l1 - 1));
            let expected: Vec<Read> = expected.into_iter().map(shift).collect();
            assert_eq!(rows_of(CsvRows::in_place(block.to_vec(), false, b',', b'"')), expected, "{block:?}");
        }
    }

    #[test]
    fn plain_quoted_crlf_and_bom_inputs() {
        for input in [
            &b"a,b\n1,2\n"[..],
            b"\xef\xbb\xbfa,b\n1,2",
            b"a,\"b\nc\",d\n\n\nx,y\r\nz\r\r\n,\n\"\"\n",
            b"last line without newline",
            b"",
            b"\n\n\n",
            b"\xef\xbb\xbf",
        ] {
            assert_eq!(with_csv_rows(input, 4), with_csv_crate(input, 4));
            assert_eq!(with_csv_rows(input, 1 << 16), with_csv_crate(input, 1 << 16));
        }
        // A BOM split across buffer fills is still a BOM.
        assert_eq!(with_csv_rows(b"\xef\xbb\xbfa", 1), with_csv_crate(b"\xef\xbb\xbfa", 4));
        assert!(with_csv_rows(b"\xef\xbb\xbf", 1).is_empty());
    }
}
