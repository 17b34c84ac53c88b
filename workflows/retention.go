package workflows

// retentionTasks lists the periodic tasks of the retention of originals and of closed cases' personal data.
func (w *Worker) retentionTasks() []Periodic { return nil }
