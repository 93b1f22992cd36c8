"""Runs a Flink SQL script (as `flowctl export flink-sql` writes it) on a local PyFlink
mini-cluster, statement by statement through TableEnvironment.execute_sql, and waits
for its statement set to finish. Used by tests/it/flink.rs; run it with the python
that `scripts/pyflink install` prints:

    $(scripts/pyflink python) scripts/flink-sql-run.py SCRIPT.sql...
"""
import re
import sys

from pyflink.table import EnvironmentSettings, TableEnvironment


SET = re.compile(r"SET\s+'([^']*)'\s*=\s*'([^']*)'", re.IGNORECASE)


def statements(text):
    """The script's statements: `;` ends one at the end of a line, except inside
    EXECUTE STATEMENT SET ... END; comment lines are left out."""
    current = []
    for line in text.splitlines():
        if line.strip().startswith("--") or not line.strip():
            continue
        current.append(line)
        block = current[0].strip().upper().startswith("EXECUTE STATEMENT SET")
        ended = line.strip() == "END;" if block else line.rstrip().endswith(";")
        if ended:
            yield "\n".join(current).rstrip().rstrip(";")
            current = []
    if current:
        raise SystemExit("flink-sql-run: the script ends inside a statement")


def run(path):
    with open(path) as f:
        text = f.read()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    result = None
    for statement in statements(text):
        setting = SET.fullmatch(statement)
        if setting:
            # The SQL client runs SET itself; execute_sql does not take it.
            env.get_config().set(setting.group(1), setting.group(2))
            continue
        result = env.execute_sql(statement)
    if result is not None and result.get_job_client() is not None:
        result.wait()


def main():
    # Several scripts share one JVM (its start-up is most of a small job's time).
    for path in sys.argv[1:]:
        run(path)


if __name__ == "__main__":
    main()
