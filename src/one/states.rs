//! OpenNebula VM states: names, the StratusLab summary label and the Libcloud `NodeState` value.
//!
//! `STATE` 0..=8 and `LCM_STATE` 0..=22 are OpenNebula 3.8.5's (`include/VirtualMachine.h`);
//! 3.2 knows `STATE` 0..=7 and `LCM_STATE` 0..=16 with the same numbers, so one table serves both.
//! Nothing here panics: unknown numbers give `None`, `"Unknown"` or `"unknown"`.

/// `STATE` names (index = value), as OpenNebula spells them.
const STATE_NAMES: [&str; 9] = [
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
    "POWEROFF",
];

/// `LCM_STATE` names (index = value), as OpenNebula 3.8.5 spells them.
const LCM_STATE_NAMES: [&str; 23] = [
    "LCM_INIT",
    "PROLOG",
    "BOOT",
    "RUNNING",
    "MIGRATE",
    "SAVE_STOP",
    "SAVE_SUSPEND",
    "SAVE_MIGRATE",
    "PROLOG_MIGRATE",
    "PROLOG_RESUME",
    "EPILOG_STOP",
    "EPILOG",
    "SHUTDOWN",
    "CANCEL",
    "FAILURE",
    "CLEANUP",
    "UNKNOWN",
    "HOTPLUG",
    "SHUTDOWN_POWEROFF",
    "BOOT_UNKNOWN",
    "BOOT_POWEROFF",
    "BOOT_SUSPENDED",
    "BOOT_STOPPED",
];

/// StratusLab client labels for `STATE` (its lower-case names through Python's `str.title()`).
const STATE_LABELS: [&str; 9] = [
    "Init",
    "Pending",
    "Hold",
    "Active",
    "Stopped",
    "Suspended",
    "Done",
    "Failed",
    "Poweroff",
];

/// StratusLab client labels for `LCM_STATE`. 0..=16 are the client's own names title-cased (15 is
/// the client's `delete`, OpenNebula's `CLEANUP`); 17..=22 (3.8 only, unknown to the client) are
/// OpenNebula's names in the same style.
const LCM_LABELS: [&str; 23] = [
    "Lcm_Init",
    "Prolog",
    "Boot",
    "Running",
    "Migrate",
    "Save_Stop",
    "Save_Suspend",
    "Save_Migrate",
    "Prolog_Migrate",
    "Prolog_Resume",
    "Epilog_Stop",
    "Epilog",
    "Shutdown",
    "Cancel",
    "Failure",
    "Delete",
    "Unknown",
    "Hotplug",
    "Shutdown_Poweroff",
    "Boot_Unknown",
    "Boot_Poweroff",
    "Boot_Suspended",
    "Boot_Stopped",
];

/// Libcloud `NodeState` value for an ACTIVE VM, by `LCM_STATE`.
///
/// Choices: PROLOG/BOOT/BOOT_* and PROLOG_RESUME are `starting` (placed on a host, being
/// prepared), LCM_INIT is `pending` (not yet doing anything); EPILOG and CLEANUP are `stopping`
/// (the VM is being torn down; only DONE is `terminated`).
const LCM_NODE_STATES: [&str; 23] = [
    "pending",       // LCM_INIT
    "starting",      // PROLOG
    "starting",      // BOOT
    "running",       // RUNNING
    "migrating",     // MIGRATE
    "stopping",      // SAVE_STOP
    "stopping",      // SAVE_SUSPEND
    "migrating",     // SAVE_MIGRATE
    "migrating",     // PROLOG_MIGRATE
    "starting",      // PROLOG_RESUME
    "stopping",      // EPILOG_STOP
    "stopping",      // EPILOG
    "stopping",      // SHUTDOWN
    "stopping",      // CANCEL
    "error",         // FAILURE
    "stopping",      // CLEANUP
    "unknown",       // UNKNOWN
    "reconfiguring", // HOTPLUG
    "stopping",      // SHUTDOWN_POWEROFF
    "starting",      // BOOT_UNKNOWN
    "starting",      // BOOT_POWEROFF
    "starting",      // BOOT_SUSPENDED
    "starting",      // BOOT_STOPPED
];

/// OpenNebula `STATE` value of an active VM (the only state where `LCM_STATE` matters).
pub const ACTIVE: i32 = 3;
/// OpenNebula `LCM_STATE` value of a running VM.
pub const RUNNING: i32 = 3;

fn lookup<T: Copy>(table: &[T], index: i32) -> Option<T> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i).copied())
}

/// OpenNebula name of a `STATE` value (`INIT`..`POWEROFF`), `None` when out of range.
pub fn state_name(state: i32) -> Option<&'static str> {
    lookup(&STATE_NAMES, state)
}

/// OpenNebula name of an `LCM_STATE` value (`LCM_INIT`..`BOOT_STOPPED`), `None` when out of range.
pub fn lcm_state_name(lcm: i32) -> Option<&'static str> {
    lookup(&LCM_STATE_NAMES, lcm)
}

/// The StratusLab client's summary label (`Running`, `Pending`, `Lcm_Init`, `Save_Stop`, ...).
///
/// Fixes two client quirks: LCM 0 of an ACTIVE VM is `Lcm_Init` (the client said
/// `Invalid State`), and any out-of-range value is `Unknown` (the client raised IndexError).
pub fn summary_label(state: i32, lcm: i32) -> &'static str {
    let label = if state == ACTIVE {
        lookup(&LCM_LABELS, lcm)
    } else {
        lookup(&STATE_LABELS, state)
    };
    label.unwrap_or("Unknown")
}

/// Libcloud `NodeState` value (lower-case string) for a (`STATE`, `LCM_STATE`) pair.
///
/// INIT/PENDING/HOLD → `pending`; ACTIVE → by `LCM_STATE` (see the table above); STOPPED and
/// POWEROFF → `stopped`; SUSPENDED → `suspended`; DONE → `terminated`; FAILED → `error`;
/// anything out of range → `unknown`.
pub fn node_state(state: i32, lcm: i32) -> &'static str {
    match state {
        0..=2 => "pending",
        ACTIVE => lookup(&LCM_NODE_STATES, lcm).unwrap_or("unknown"),
        4 | 8 => "stopped",
        5 => "suspended",
        6 => "terminated",
        7 => "error",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE_STATES: [&str; 13] = [
        "running",
        "rebooting",
        "terminated",
        "pending",
        "unknown",
        "stopped",
        "suspended",
        "error",
        "paused",
        "reconfiguring",
        "migrating",
        "starting",
        "stopping",
    ];

    #[test]
    fn names_cover_3_8_5() {
        assert_eq!(state_name(0), Some("INIT"));
        assert_eq!(state_name(3), Some("ACTIVE"));
        assert_eq!(state_name(8), Some("POWEROFF"));
        assert_eq!(state_name(9), None);
        assert_eq!(state_name(-1), None);
        assert_eq!(lcm_state_name(0), Some("LCM_INIT"));
        assert_eq!(lcm_state_name(15), Some("CLEANUP"));
        assert_eq!(lcm_state_name(17), Some("HOTPLUG"));
        assert_eq!(lcm_state_name(22), Some("BOOT_STOPPED"));
        assert_eq!(lcm_state_name(23), None);
        assert_eq!(lcm_state_name(i32::MIN), None);
    }

    #[test]
    fn summary_labels_match_the_client_and_fix_its_quirks() {
        assert_eq!(summary_label(3, 3), "Running");
        assert_eq!(summary_label(3, 0), "Lcm_Init");
        assert_eq!(summary_label(3, 5), "Save_Stop");
        assert_eq!(summary_label(3, 8), "Prolog_Migrate");
        assert_eq!(summary_label(3, 15), "Delete");
        assert_eq!(summary_label(3, 18), "Shutdown_Poweroff");
        assert_eq!(summary_label(3, 23), "Unknown");
        assert_eq!(summary_label(1, 0), "Pending");
        assert_eq!(summary_label(1, 3), "Pending");
        assert_eq!(summary_label(7, 0), "Failed");
        assert_eq!(summary_label(8, 0), "Poweroff");
        assert_eq!(summary_label(9, 0), "Unknown");
        assert_eq!(summary_label(-5, 3), "Unknown");
    }

    /// Expected value for every pair, written independently of the tables above.
    fn expected(state: i32, lcm: i32) -> &'static str {
        match (state, lcm) {
            (0..=2, _) => "pending",
            (3, 0) => "pending",
            (3, 1 | 2 | 9 | 19..=22) => "starting",
            (3, 3) => "running",
            (3, 4 | 7 | 8) => "migrating",
            (3, 5 | 6 | 10..=13 | 15 | 18) => "stopping",
            (3, 14) => "error",
            (3, 16) => "unknown",
            (3, 17) => "reconfiguring",
            (3, _) => "unknown",
            (4, _) | (8, _) => "stopped",
            (5, _) => "suspended",
            (6, _) => "terminated",
            (7, _) => "error",
            _ => "unknown",
        }
    }

    #[test]
    fn node_state_table_every_pair() {
        for state in 0..10 {
            for lcm in 0..25 {
                let got = node_state(state, lcm);
                assert_eq!(got, expected(state, lcm), "state {state} lcm {lcm}");
                assert!(NODE_STATES.contains(&got), "{got} is not a NodeState value");
                // the label is total too
                assert!(!summary_label(state, lcm).is_empty());
            }
        }
        for (s, l) in [
            (i32::MIN, 0),
            (-1, 3),
            (3, -1),
            (3, i32::MAX),
            (i32::MAX, 3),
        ] {
            assert_eq!(node_state(s, l), "unknown");
            assert_eq!(summary_label(s, l), "Unknown");
        }
    }

    #[test]
    fn captured_states() {
        // (STATE, LCM_STATE) of the 3.8.5 captures: pending, running, poweroff, done.
        assert_eq!(node_state(1, 0), "pending");
        assert_eq!(node_state(3, 3), "running");
        assert_eq!(node_state(8, 0), "stopped");
        assert_eq!(node_state(6, 0), "terminated");
    }
}
