"""Energy lower bound and dataflow upper bounds (symbolic and numeric), and their executors."""
