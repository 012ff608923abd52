"""Micro benchmarks: what one activation call costs in time, memory and accuracy.

Flow: options -> `session.open_run` (plan.make_plan, output paths, resume) -> `session.execute`
-> `runner.Runner` (groups, interleaved rounds, one row per configuration through records.rows)
-> the report writer.

    plan.py       options -> configurations, validated before anything runs
    workload.py   what each pass times, inputs, minimum bytes per pass
    device.py     MicroDevice per device kind (cpu, mps, cuda): timer, cold default, sync,
                  free memory, peak bytes, whether GPU health applies; decided once per device
    timers.py     the Timer protocol; wall-clock timers (hot, cold with a cache flush)
    cuda.py       CUDA-event timer, L2 flush, CUDA graphs, CUDA peak bytes
    failures.py   failure kinds carrying their report status; `translate` for foreign exceptions
    stopping.py   warm-up and stopping rules (pure)
    memory.py     saved-for-backward bytes; peak bytes through the device
    accuracy.py   errors against float64, extreme-value probe
    health.py     GPU clocks, throttling, energy, L2 fit (NVML)
    runner.py     groups, interleaved rounds, memory-bounded chunks, rows, progress events
    session.py    MicroOptions, report files, resume, sidecar, wiring
"""
