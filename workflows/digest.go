package workflows

// digestTasks lists the periodic tasks of the supervisors' daily and weekly digests.
func (w *Worker) digestTasks() []Periodic { return nil }
