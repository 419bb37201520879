"""The names of the environment variables through which a sweep's process speaks to its jobs' cells: the
sweep (bench.sweep) sets them, each cell (bench.cell) reads them."""

RUN_ID_VAR = "BENCH_RUN_ID"  # names the sweep in each result it writes (bench.cell.new_result)
PARENT_PID_VAR = "BENCH_PARENT_PID"  # the sweep's process, which local workers watch (bench.cell.exit_with_parent)
