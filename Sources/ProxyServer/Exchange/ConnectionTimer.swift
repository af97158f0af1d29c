import NIOCore

/// The one scheduled task behind a connection's (or stream's) timers: head, idle, body and
/// lingering deadlines all come from `ExchangeStateMachine.timerDeadline`.
///
/// Moving a deadline later does not touch the event loop's timer heap: the pending task
/// fires, sees the later deadline and schedules itself again. On a kept-alive connection
/// the idle deadline moves with every request, so this saves a cancel and a schedule per
/// request; only an earlier deadline replaces the task.
struct ConnectionTimer {
    private var task: Scheduled<Void>?
    private var taskDeadline = NIODeadline.distantFuture

    /// A task must be scheduled for `deadline` (nil: no timer is needed; a pending task is
    /// left to fire and find nothing to do, unless `cancel` is called).
    func needsTask(for deadline: NIODeadline?) -> Bool {
        guard let deadline else { return false }
        return task == nil || deadline < taskDeadline
    }

    /// Replaces the pending task with one that runs `fire` at `deadline`.
    mutating func schedule(at deadline: NIODeadline, on eventLoop: any EventLoop, fire: @escaping @Sendable () -> Void)
    {
        task?.cancel()
        taskDeadline = deadline
        task = eventLoop.scheduleTask(deadline: deadline) { fire() }
    }

    /// The pending task fired; the next `sync` schedules again if a deadline remains.
    mutating func fired() {
        task = nil
        taskDeadline = .distantFuture
    }

    mutating func cancel() {
        task?.cancel()
        task = nil
        taskDeadline = .distantFuture
    }
}
