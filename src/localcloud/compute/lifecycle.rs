//! The VM lifecycle state machine: planned events applied lazily when their time comes, the
//! DispatchManager's state checks for each action, and the HISTORY records.

use super::*;

/// A lifecycle event, applied lazily when its time comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ev {
    /// The scheduler placed the VM: ACTIVE with this prolog LCM state, a new HISTORY record.
    Deploy(i32),
    /// Prolog done: this boot LCM state.
    Boot(i32),
    /// The hypervisor reports the VM running.
    Running,
    /// This epilog LCM state (the VM is being torn down on its host).
    Epilog(i32),
    /// Gone: DONE, leases released.
    Done,
    /// Parked off its host in this STATE (STOPPED, SUSPENDED, POWEROFF, UNDEPLOYED).
    Park(i32),
    /// Cleaned up for a resubmit: back to PENDING.
    Requeue,
}

/// Seconds (document timestamps) of a microsecond instant.
pub(super) fn secs(us: i64) -> i64 {
    us.div_euclid(1_000_000)
}

/// What an action does, whatever its name in the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Shutdown,
    Cancel,
    Finalize,
    Hold,
    Release,
    Stop,
    Suspend,
    Resume,
    Restart,
    Resubmit,
    Reboot,
    Resched(bool),
    Poweroff,
    Undeploy,
    Terminate { hard: bool },
}

/// Why an action was refused.
pub(super) enum ActionError {
    WrongState,
    NotSupported,
}

impl ComputeState {
    /// Applies every planned transition due at or before `now` (Unix seconds).
    pub fn advance(&mut self, now: f64) {
        self.advance_us((now * 1e6) as i64);
    }

    pub(super) fn advance_us(&mut self, now: i64) {
        while let Some(&(due, id)) = self.due.first() {
            if due > now {
                break;
            }
            self.due.remove(&(due, id));
            let mut events = Vec::new();
            if let Some(vm) = self.vms.get_mut(&id) {
                while let Some(&(at, ev)) = vm.plan.front() {
                    if at > now {
                        break;
                    }
                    vm.plan.pop_front();
                    events.push((at, ev));
                }
                if let Some(&(next, _)) = vm.plan.front() {
                    self.due.insert((next, id));
                }
            }
            for (at, ev) in events {
                self.apply(id, at, ev);
            }
        }
    }

    pub(super) fn touch(&mut self, id: i64) {
        self.generation += 1;
        if let Some(vm) = self.vms.get_mut(&id) {
            vm.info_doc = None;
            vm.pool_doc = None;
        }
    }

    /// Replaces the VM's plan by `events`, one `boot_step` apart starting one step after `at`.
    pub(super) fn plan(&mut self, id: i64, at: i64, events: &[Ev]) {
        let step = self.step_us;
        let Some(vm) = self.vms.get_mut(&id) else {
            return;
        };
        if let Some(&(old, _)) = vm.plan.front() {
            self.due.remove(&(old, id));
        }
        vm.plan = events
            .iter()
            .enumerate()
            .map(|(i, ev)| (at.saturating_add(step.saturating_mul(i as i64 + 1)), *ev))
            .collect();
        if let Some(&(next, _)) = vm.plan.front() {
            self.due.insert((next, id));
        }
    }

    pub(super) fn deploy_plan(&mut self, id: i64, at: i64, prolog: i32, boot: i32) {
        self.plan(id, at, &[Ev::Deploy(prolog), Ev::Boot(boot), Ev::Running]);
    }

    pub(super) fn apply(&mut self, id: i64, at: i64, ev: Ev) {
        let t = secs(at);
        let hosts = self.hosts.clone();
        let mut released = Vec::new();
        let Some(vm) = self.vms.get_mut(&id) else {
            return;
        };
        match ev {
            Ev::Deploy(lcm) => {
                let hid = (id as usize) % hosts.len().max(1);
                vm.state = ACTIVE;
                vm.lcm = lcm;
                vm.history.push(Hist {
                    seq: vm.history.len() as i64,
                    hostname: hosts.get(hid).cloned().unwrap_or_default(),
                    hid: hid as i64,
                    stime: t,
                    pstime: t,
                    ..Hist::default()
                });
            }
            Ev::Boot(lcm) => {
                vm.lcm = lcm;
                if let Some(h) = vm.history.last_mut() {
                    h.petime = t;
                    h.rstime = t;
                }
            }
            Ev::Running => {
                vm.state = ACTIVE;
                vm.lcm = RUNNING;
                vm.last_poll = t;
                if vm.deploy_id.is_empty() {
                    let host = vm.history.last().map(|h| h.hostname.as_str()).unwrap_or("");
                    vm.deploy_id = format!("{host}:{}:dummy", vm.name);
                }
            }
            Ev::Epilog(lcm) => {
                vm.state = ACTIVE;
                vm.lcm = lcm;
                if let Some(h) = vm.history.last_mut() {
                    if h.retime == 0 && h.rstime != 0 {
                        h.retime = t;
                    }
                    h.estime = t;
                }
            }
            Ev::Done => {
                vm.state = DONE;
                vm.lcm = LCM_INIT;
                vm.etime = t;
                close_history(vm, t, REASON_NONE);
                released = std::mem::take(&mut vm.leases);
                self.ended.push(id);
            }
            Ev::Park(state) => {
                vm.state = state;
                vm.lcm = LCM_INIT;
                close_history(vm, t, REASON_STOP_RESUME);
            }
            Ev::Requeue => {
                vm.state = PENDING;
                vm.lcm = LCM_INIT;
                close_history(vm, t, REASON_USER);
            }
        }
        for (net, offset) in released {
            if let Some(network) = self.networks.get_mut(net) {
                network.used.remove(&offset);
            }
        }
        if ev == Ev::Done {
            one7::release_images(self, id);
        }
        self.touch(id);
    }

    /// The DispatchManager's state checks and the LCM sequences (3.8.5 vm.log for 3.x).
    pub(super) fn perform(&mut self, now: i64, id: i64, op: Op) -> Result<(), ActionError> {
        let dialect = self.dialect;
        let Some(vm) = self.vms.get_mut(&id) else {
            return Err(ActionError::WrongState);
        };
        let (state, lcm) = (vm.state, vm.lcm);
        let running = state == ACTIVE && lcm == RUNNING;
        let running_or_unknown = state == ACTIVE && (lcm == RUNNING || lcm == UNKNOWN);
        let t = secs(now);
        let set = |vm: &mut Vm, state: i32, lcm: i32| {
            vm.state = state;
            vm.lcm = lcm;
        };
        match op {
            Op::Reboot | Op::Resched(_) => {
                if !running {
                    return Err(ActionError::WrongState);
                }
                if let Op::Resched(flag) = op {
                    vm.resched = flag;
                } else {
                    vm.resched = false;
                }
            }
            Op::Shutdown | Op::Cancel => {
                let ok = if dialect == Dialect::One4 {
                    running_or_unknown
                } else {
                    running
                };
                if !ok {
                    return Err(ActionError::WrongState);
                }
                let lcm = if matches!(op, Op::Shutdown) {
                    SHUTDOWN
                } else {
                    CANCEL
                };
                set(vm, ACTIVE, lcm);
                self.plan(id, now, &[Ev::Epilog(EPILOG), Ev::Done]);
            }
            Op::Terminate { hard } => match state {
                ACTIVE if running_or_unknown => {
                    set(vm, ACTIVE, if hard { CANCEL } else { SHUTDOWN });
                    self.plan(id, now, &[Ev::Epilog(EPILOG), Ev::Done]);
                }
                SUSPENDED | POWEROFF | STOPPED | UNDEPLOYED => {
                    set(vm, ACTIVE, EPILOG);
                    self.plan(id, now, &[Ev::Done]);
                }
                INIT | PENDING | HOLD => {
                    self.plan(id, now, &[]);
                    self.apply(id, now, Ev::Done);
                }
                DONE => {}
                _ => return Err(ActionError::WrongState),
            },
            Op::Finalize => {
                if state != DONE {
                    if state == ACTIVE {
                        set(vm, ACTIVE, CLEANUP);
                    }
                    self.plan(id, now, &[]);
                    self.apply(id, now, Ev::Done);
                }
            }
            Op::Hold => {
                if state != PENDING {
                    return Err(ActionError::WrongState);
                }
                set(vm, HOLD, LCM_INIT);
                self.plan(id, now, &[]);
            }
            Op::Release => {
                if state != HOLD {
                    return Err(ActionError::WrongState);
                }
                set(vm, PENDING, LCM_INIT);
                self.deploy_plan(id, now, PROLOG, BOOT);
            }
            Op::Stop => {
                if !running {
                    return Err(ActionError::WrongState);
                }
                set(vm, ACTIVE, SAVE_STOP);
                self.plan(id, now, &[Ev::Epilog(EPILOG_STOP), Ev::Park(STOPPED)]);
            }
            Op::Suspend => {
                if !running {
                    return Err(ActionError::WrongState);
                }
                set(vm, ACTIVE, SAVE_SUSPEND);
                self.plan(id, now, &[Ev::Park(SUSPENDED)]);
            }
            Op::Poweroff => {
                if !running {
                    return Err(ActionError::WrongState);
                }
                set(vm, ACTIVE, SHUTDOWN_POWEROFF);
                self.plan(id, now, &[Ev::Park(POWEROFF)]);
            }
            Op::Undeploy => {
                if running {
                    set(vm, ACTIVE, SHUTDOWN_UNDEPLOY);
                    self.plan(
                        id,
                        now,
                        &[Ev::Epilog(EPILOG_UNDEPLOY), Ev::Park(UNDEPLOYED)],
                    );
                } else if state == POWEROFF {
                    set(vm, ACTIVE, EPILOG_UNDEPLOY);
                    reopen_history(vm, t);
                    self.plan(id, now, &[Ev::Park(UNDEPLOYED)]);
                } else {
                    return Err(ActionError::WrongState);
                }
            }
            Op::Resume => match state {
                STOPPED => {
                    set(vm, PENDING, LCM_INIT);
                    self.deploy_plan(id, now, PROLOG_RESUME, BOOT);
                }
                UNDEPLOYED => {
                    set(vm, PENDING, LCM_INIT);
                    self.deploy_plan(id, now, PROLOG_UNDEPLOY, BOOT_UNDEPLOY);
                }
                SUSPENDED => {
                    set(vm, ACTIVE, BOOT_SUSPENDED);
                    reopen_history(vm, t);
                    self.plan(id, now, &[Ev::Running]);
                }
                POWEROFF if matches!(dialect, Dialect::One4 | Dialect::One5 | Dialect::One7) => {
                    set(vm, ACTIVE, BOOT_POWEROFF);
                    reopen_history(vm, t);
                    self.plan(id, now, &[Ev::Running]);
                }
                _ => return Err(ActionError::WrongState),
            },
            Op::Restart => {
                let booting = if dialect == Dialect::One32 {
                    matches!(lcm, UNKNOWN | BOOT)
                } else {
                    matches!(
                        lcm,
                        UNKNOWN
                            | BOOT
                            | BOOT_UNKNOWN
                            | BOOT_POWEROFF
                            | BOOT_SUSPENDED
                            | BOOT_STOPPED
                    )
                };
                if state == POWEROFF {
                    set(vm, ACTIVE, BOOT_POWEROFF);
                    reopen_history(vm, t);
                    self.plan(id, now, &[Ev::Running]);
                } else if state == ACTIVE && booting {
                    self.plan(id, now, &[Ev::Running]);
                } else {
                    return Err(ActionError::WrongState);
                }
            }
            Op::Resubmit => match state {
                ACTIVE => {
                    set(vm, ACTIVE, CLEANUP);
                    let step = [Ev::Requeue, Ev::Deploy(PROLOG), Ev::Boot(BOOT), Ev::Running];
                    self.plan(id, now, &step);
                }
                HOLD | STOPPED => {
                    set(vm, PENDING, LCM_INIT);
                    self.deploy_plan(id, now, PROLOG, BOOT);
                }
                INIT | PENDING => {}
                _ => return Err(ActionError::WrongState),
            },
        }
        self.touch(id);
        Ok(())
    }
}

/// Ends the current HISTORY record at `t`.
pub(super) fn close_history(vm: &mut Vm, t: i64, reason: i32) {
    if let Some(h) = vm.history.last_mut() {
        if h.estime != 0 && h.eetime == 0 {
            h.eetime = t;
        }
        if h.rstime != 0 && h.retime == 0 {
            h.retime = t;
        }
        if h.etime == 0 {
            h.etime = t;
        }
        h.reason = reason;
    }
}

/// Starts a new HISTORY record on the same host at `t`, booting without a prolog (resume from
/// SUSPENDED, restart from POWEROFF).
pub(super) fn reopen_history(vm: &mut Vm, t: i64) {
    let (hostname, hid) = vm
        .history
        .last()
        .map(|h| (h.hostname.clone(), h.hid))
        .unwrap_or_default();
    vm.history.push(Hist {
        seq: vm.history.len() as i64,
        hostname,
        hid,
        stime: t,
        rstime: t,
        ..Hist::default()
    });
}
