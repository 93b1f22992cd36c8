"""W1 in DuckDB (batch SQL), with W1's lateness rule written out in SQL so that its
output can be checked against flowctl's and the hand-written program's.

    python scripts/duckdb_w1.py DATA.csv OUT.csv THREADS [plain]

A record is late when its window's end - 1 <= the watermark before it: the largest
`ts` of the records before it in the file (filtered or not) minus 2 s. With `plain`,
the usual batch query instead: a GROUP BY that counts late records too (faster; its
output differs where records were late).
"""

import sys

import duckdb

data, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
plain = sys.argv[4:] == ["plain"]
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
query = f"""
WITH numbered AS (
    SELECT row_number() OVER () AS n, ts, user_id, bytes, status
    FROM read_csv('{data}', header = true,
                  columns = {{'ts': 'BIGINT', 'user_id': 'VARCHAR', 'url': 'VARCHAR',
                              'bytes': 'BIGINT', 'status': 'BIGINT'}})
),
judged AS (
    SELECT *, max(ts) OVER (ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 2000 AS watermark
    FROM numbered
)
SELECT user_id, ts - ts % 10000 AS window_start, ts - ts % 10000 + 10000 AS window_end,
       count(*) AS count, sum(bytes) AS bytes
FROM judged
WHERE status = 200 AND (watermark IS NULL OR ts - ts % 10000 + 10000 - 1 > watermark)
GROUP BY ALL
"""
if plain:
    query = f"""
    SELECT user_id, ts - ts % 10000 AS window_start, ts - ts % 10000 + 10000 AS window_end,
           count(*) AS count, sum(bytes) AS bytes
    FROM read_csv('{data}', header = true,
                  columns = {{'ts': 'BIGINT', 'user_id': 'VARCHAR', 'url': 'VARCHAR',
                              'bytes': 'BIGINT', 'status': 'BIGINT'}})
    WHERE status = 200
    GROUP BY ALL
    """
con.execute(f"COPY ({query}) TO '{out}' (HEADER false)")
