package workflows

// sweepTasks lists the periodic tasks of the sweeper of uploads never attached to a report and of orphan objects.
func (w *Worker) sweepTasks() []Periodic { return nil }
