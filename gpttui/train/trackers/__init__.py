"""Experiment trackers off the trainer's CPU: `listener` (the Trainer's TrackerListener,
feeding a child process in batches), `child` (the process running W&B / TensorBoard at
nice 19), `tbwriter` (TensorBoard event files without torch)."""
