//! Version dialects: which OpenNebula the site pretends to be, what it calls each VM action
//! and how its messages name a state.

use super::*;

/// Which OpenNebula the site pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// StratusLab's OpenNebula 3.2: no `one.system.version`, no POWEROFF.
    One32,
    /// OpenNebula 3.8.5 (the captures).
    One38,
    /// OpenNebula 4.x action names (`delete`, `shutdown-hard`, `undeploy`, ...), as 4.14.
    One4,
    /// OpenNebula 5.x action names (`terminate`, `terminate-hard`, ...) and 5-element errors,
    /// as 5.12.
    One5,
    /// OpenNebula 7.4 (the 7.4.0 captures): 5.x's vocabulary, `one.vm.recover`,
    /// `one.vmpool.infoextended`, short pool bodies, descending lists.
    One7,
}

impl Dialect {
    /// Parses a version knob (`"3.2"`, `"3.8"`, `"4.x"`, `"5.x"`, or a full `"4.14.2"`) into the
    /// dialect and the version string `one.system.version` reports.
    pub fn parse(knob: &str) -> Option<(Dialect, String)> {
        let parts: Vec<&str> = knob.trim().split('.').collect();
        let (dialect, default) = match (parts.first().copied(), parts.get(1).copied()) {
            (Some("3"), Some("2")) => (Dialect::One32, "3.2.1"),
            (Some("3"), Some("8")) => (Dialect::One38, "3.8.5"),
            (Some("4"), _) => (Dialect::One4, "4.14.2"),
            (Some("5"), _) => (Dialect::One5, "5.12.0"),
            (Some("7"), _) => (Dialect::One7, "7.4.0"),
            _ => return None,
        };
        let full = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        Some((dialect, if full { knob.trim() } else { default }.to_owned()))
    }

    /// The name an error message starts with: the C++ request class up to 4.x, the XML-RPC
    /// method name from 5.x.
    pub(super) fn request_name(self, method: &str) -> &str {
        if matches!(self, Dialect::One5 | Dialect::One7) {
            return method;
        }
        match method {
            "one.system.version" => "SystemVersion",
            "one.vm.allocate" => "VirtualMachineAllocate",
            "one.vm.info" => "VirtualMachineInfo",
            "one.vmpool.info" => "VirtualMachinePoolInfo",
            "one.vm.action" => "VirtualMachineAction",
            other => other,
        }
    }

    pub(super) fn has_method(self, method: &str) -> bool {
        match method {
            "one.vm.allocate" | "one.vm.info" | "one.vmpool.info" | "one.vm.action" => true,
            "one.system.version" => self != Dialect::One32,
            _ => false,
        }
    }

    /// Highest `STATE` a pool query may filter on (3.x rejects POWEROFF: its check stops at FAILED).
    pub(super) fn max_pool_state(self) -> i64 {
        match self {
            Dialect::One32 | Dialect::One38 => 7,
            Dialect::One4 => 9,
            Dialect::One5 | Dialect::One7 => 11,
        }
    }
}

/// The action's meaning in `dialect` and the name its messages use (after the daemon's
/// compatibility renames), or `None` when the daemon does not know it.
pub(super) fn action_op(dialect: Dialect, name: &str) -> (Option<Op>, String) {
    let renamed = match (dialect, name) {
        (Dialect::One4, "cancel") => "shutdown-hard",
        (Dialect::One4, "finalize") => "delete",
        (Dialect::One4, "resubmit") => "delete-recreate",
        (Dialect::One4, "reset") => "reboot-hard",
        (Dialect::One5, "shutdown-hard" | "delete") => "terminate-hard",
        (Dialect::One5, "shutdown") => "terminate",
        _ => name,
    };
    let op = match (dialect, renamed) {
        (_, "hold") => Some(Op::Hold),
        (_, "release") => Some(Op::Release),
        (_, "stop") => Some(Op::Stop),
        (_, "suspend") => Some(Op::Suspend),
        (_, "resume") => Some(Op::Resume),
        (_, "reboot") => Some(Op::Reboot),
        (Dialect::One32 | Dialect::One38, "shutdown") => Some(Op::Shutdown),
        (Dialect::One32 | Dialect::One38, "cancel") => Some(Op::Cancel),
        (Dialect::One32 | Dialect::One38, "finalize") => Some(Op::Finalize),
        (Dialect::One32 | Dialect::One38, "restart") => Some(Op::Restart),
        (Dialect::One32 | Dialect::One38, "resubmit") => Some(Op::Resubmit),
        (Dialect::One38, "reset") => Some(Op::Reboot),
        (Dialect::One32, "resched" | "unresched" | "poweroff") => None,
        (_, "resched") => Some(Op::Resched(true)),
        (_, "unresched") => Some(Op::Resched(false)),
        (_, "poweroff") => Some(Op::Poweroff),
        (Dialect::One4, "shutdown") => Some(Op::Shutdown),
        (Dialect::One4, "shutdown-hard") => Some(Op::Cancel),
        (Dialect::One4, "delete") => Some(Op::Finalize),
        (Dialect::One4, "delete-recreate") => Some(Op::Resubmit),
        (Dialect::One4 | Dialect::One5 | Dialect::One7, "reboot-hard") => Some(Op::Reboot),
        (Dialect::One4 | Dialect::One5 | Dialect::One7, "poweroff-hard") => Some(Op::Poweroff),
        (Dialect::One4 | Dialect::One5 | Dialect::One7, "undeploy" | "undeploy-hard") => {
            Some(Op::Undeploy)
        }
        (Dialect::One5 | Dialect::One7, "terminate") => Some(Op::Terminate { hard: false }),
        (Dialect::One5 | Dialect::One7, "terminate-hard") => Some(Op::Terminate { hard: true }),
        _ => None,
    };
    (op, renamed.to_owned())
}

/// OpenNebula's name for a VM's state, as 4.x/5.x messages print it (LCM name when ACTIVE).
pub(super) fn state_str(state: i32, lcm: i32) -> &'static str {
    use crate::one::states::{lcm_state_name, state_name};
    if state == ACTIVE {
        match lcm {
            SHUTDOWN_UNDEPLOY => "SHUTDOWN_UNDEPLOY",
            EPILOG_UNDEPLOY => "EPILOG_UNDEPLOY",
            PROLOG_UNDEPLOY => "PROLOG_UNDEPLOY",
            BOOT_UNDEPLOY => "BOOT_UNDEPLOY",
            _ => lcm_state_name(lcm).unwrap_or("UNKNOWN"),
        }
    } else if state == UNDEPLOYED {
        "UNDEPLOYED"
    } else {
        state_name(state).unwrap_or("UNKNOWN")
    }
}
