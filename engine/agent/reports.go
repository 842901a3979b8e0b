package agent

import (
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
)

// pendingReport is the newest status of a task not yet acknowledged.
type pendingReport struct {
	status *api.TaskStatus
	sentAt int64 // monotonic ns of the last send; 0: never sent
}

// sentStatus remembers which status a report carried, so that its ack
// clears it only if nothing newer replaced it since.
type sentStatus struct {
	task   string
	status *api.TaskStatus
}

// report records a new status of a task if it moves the task forward; it
// goes out with the next batch.
func (a *Agent) report(ts *task, state api.TaskState, msg, errMsg string, exitCode int32, unhealthy bool) {
	if state <= ts.state() {
		return
	}
	ts.reported = state
	switch state {
	case stateComplete:
		a.stats.TasksCompleted++
	case stateFailed:
		a.stats.TasksFailed++
	case stateRejected:
		a.stats.TasksRejected++
	case stateShutdown:
		a.stats.TasksShutdown++
	}
	a.reports[ts.id] = &pendingReport{status: &api.TaskStatus{
		State:     state,
		Timestamp: a.now(),
		Message:   msg,
		Err:       errMsg,
		ExitCode:  exitCode,
		Unhealthy: unhealthy,
	}}
	if a.windowTimer == nil {
		a.windowTimer = a.after(a.cfg.ReportWindow, func() {
			a.windowTimer = nil
			a.sendReports(false)
		})
	}
}

// sendReports sends the statuses never sent, and those sent longer than
// ReportRetry ago (all of them when all is set: a new session), in task ID
// order and batches of MaxReportBatch. Without a session they wait.
func (a *Agent) sendReports(all bool) {
	if a.state != connected || len(a.reports) == 0 {
		return
	}
	now := a.mono()
	retry := int64(a.cfg.ReportRetry)
	var ids []string
	for id, p := range a.reports {
		if all || p.sentAt == 0 || now-p.sentAt >= retry {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for len(ids) > 0 {
		n := min(len(ids), a.cfg.MaxReportBatch)
		a.reportSeq++
		m := &api.TaskStatusReport{SessionId: a.sessionID, Seq: a.reportSeq, Updates: make([]*api.TaskStatusUpdate, n)}
		sent := make([]sentStatus, n)
		resent := false
		for i, id := range ids[:n] {
			p := a.reports[id]
			resent = resent || p.sentAt != 0
			p.sentAt = now
			m.Updates[i] = &api.TaskStatusUpdate{TaskId: id, Status: p.status}
			sent[i] = sentStatus{task: id, status: p.status}
		}
		ids = ids[n:]
		a.remember(m.Seq, sent)
		a.stats.ReportsSent++
		a.stats.StatusesSent += uint64(n)
		if resent {
			a.stats.ReportsRetried++
		}
		a.tr.Send(a.target, m)
	}
	if a.retryTimer == nil {
		a.retryTimer = a.after(a.cfg.ReportRetry, func() {
			a.retryTimer = nil
			a.sendReports(false)
		})
	}
}

// remember keeps a report's contents for its ack, forgetting the oldest
// beyond maxInflightReports (its statuses are resent anyway).
func (a *Agent) remember(seq uint64, sent []sentStatus) {
	a.inflight[seq] = sent
	a.inflightLog = append(a.inflightLog, seq)
	if len(a.inflightLog) > maxInflightReports {
		delete(a.inflight, a.inflightLog[0])
		a.inflightLog = slices.Delete(a.inflightLog, 0, 1)
	}
}

func (a *Agent) onAck(m *api.TaskStatusAck) {
	if m.Error != api.DispatcherError_DISPATCHER_ERROR_NONE {
		if a.state == connected && m.SessionId == a.sessionID {
			a.sessionLost("report refused: "+m.Error.String(), a.nextHint(m.Error, m.Leader))
		}
		return
	}
	sent, ok := a.inflight[m.Seq]
	if !ok {
		return
	}
	delete(a.inflight, m.Seq)
	if i := slices.Index(a.inflightLog, m.Seq); i >= 0 {
		a.inflightLog = slices.Delete(a.inflightLog, i, i+1)
	}
	for _, s := range sent {
		if p := a.reports[s.task]; p != nil && p.status == s.status {
			delete(a.reports, s.task)
			a.stats.StatusesAcked++
		}
	}
	if len(a.reports) == 0 && a.retryTimer != nil {
		a.retryTimer.Stop()
		a.retryTimer = nil
	}
}

// PendingReports is the number of task statuses not yet acknowledged.
func (a *Agent) PendingReports() int { return len(a.reports) }
