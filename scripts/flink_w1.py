"""W1 in Apache Flink (PyFlink, Flink SQL), the baseline `scripts/bench` compares
flowctl with: successful requests and bytes per user in 10 s tumbling event-time
windows with 2 s out-of-orderness, on the same CSV, at parallelism 1 in streaming mode.

The source emits a watermark after every record (`scan.watermark.emit.strategy` =
`on-event`), which is the watermark definition flowctl's contract uses; with Flink's
default periodic watermarks fewer records would count as late and the results would
depend on timing.

    python scripts/flink_w1.py INPUT.csv OUTPUT_DIR
prints nothing; the result is CSV files (user_id,window_start,window_end,count,bytes)
under OUTPUT_DIR, which is emptied first (Flink's filesystem sink adds files to it).
"""

import shutil
import sys

from pyflink.table import EnvironmentSettings, TableEnvironment

source, out_dir = sys.argv[1], sys.argv[2]
shutil.rmtree(out_dir, ignore_errors=True)
env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
env.get_config().set("parallelism.default", "1")
env.execute_sql(f"""
CREATE TABLE clicks (
  ts BIGINT, user_id STRING, url STRING, `bytes` BIGINT, status INT,
  event_time AS TO_TIMESTAMP_LTZ(COALESCE(ts, 0), 3),  -- the header line parses to NULLs
  WATERMARK FOR event_time AS event_time - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem', 'path' = '{source}', 'format' = 'csv',
  'csv.ignore-parse-errors' = 'true',
  'scan.watermark.emit.strategy' = 'on-event'
)""")
env.execute_sql(f"""
CREATE TABLE results (
  user_id STRING, window_start BIGINT, window_end BIGINT, cnt BIGINT, `bytes` BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{out_dir}', 'format' = 'csv')""")
env.execute_sql("""
INSERT INTO results
SELECT user_id, UNIX_TIMESTAMP(CAST(window_start AS STRING)) * 1000, UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000,
       COUNT(*), SUM(`bytes`)
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(event_time), INTERVAL '10' SECOND))
WHERE status = 200
GROUP BY user_id, window_start, window_end""").wait()
