"""`actbench model`: what an activation costs inside a whole network (step time, throughput,
its share of the step, memory kept for backward), measured with micro's timers and rules."""
