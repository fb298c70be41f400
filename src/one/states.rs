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

/// `LCM_STATE` 23..=71 as OpenNebula 4.14 → 7.4 number them (`include/VirtualMachine.h`;
/// 3.x stops at 22, 4.x renumbered nothing below 23 but retired 13 CANCEL and 14 FAILURE and
/// renamed 15 CLEANUP_RESUBMIT): name, Libcloud `NodeState` value, and the last major version
/// defining it (`u32::MAX`: still defined in 7.4) and the first one.
const LCM_4X: [(&str, &str, u32, u32); 49] = [
    ("CLEANUP_DELETE", "stopping", 4, u32::MAX),
    ("HOTPLUG_SNAPSHOT", "reconfiguring", 4, u32::MAX),
    ("HOTPLUG_NIC", "reconfiguring", 4, u32::MAX),
    ("HOTPLUG_SAVEAS", "reconfiguring", 4, u32::MAX),
    ("HOTPLUG_SAVEAS_POWEROFF", "reconfiguring", 4, u32::MAX),
    ("HOTPLUG_SAVEAS_SUSPENDED", "reconfiguring", 4, u32::MAX),
    ("SHUTDOWN_UNDEPLOY", "stopping", 4, u32::MAX),
    ("EPILOG_UNDEPLOY", "stopping", 4, u32::MAX),
    ("PROLOG_UNDEPLOY", "starting", 4, u32::MAX),
    ("BOOT_UNDEPLOY", "starting", 4, u32::MAX),
    ("HOTPLUG_PROLOG_POWEROFF", "reconfiguring", 4, u32::MAX),
    ("HOTPLUG_EPILOG_POWEROFF", "reconfiguring", 4, u32::MAX),
    ("BOOT_MIGRATE", "migrating", 4, u32::MAX),
    ("BOOT_FAILURE", "error", 4, u32::MAX),
    ("BOOT_MIGRATE_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_MIGRATE_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_FAILURE", "error", 4, u32::MAX),
    ("EPILOG_FAILURE", "error", 4, u32::MAX),
    ("EPILOG_STOP_FAILURE", "error", 4, u32::MAX),
    ("EPILOG_UNDEPLOY_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_MIGRATE_POWEROFF", "migrating", 4, u32::MAX),
    ("PROLOG_MIGRATE_POWEROFF_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_MIGRATE_SUSPEND", "migrating", 4, u32::MAX),
    ("PROLOG_MIGRATE_SUSPEND_FAILURE", "error", 4, u32::MAX),
    ("BOOT_UNDEPLOY_FAILURE", "error", 4, u32::MAX),
    ("BOOT_STOPPED_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_RESUME_FAILURE", "error", 4, u32::MAX),
    ("PROLOG_UNDEPLOY_FAILURE", "error", 4, u32::MAX),
    ("DISK_SNAPSHOT_POWEROFF", "reconfiguring", 4, u32::MAX),
    (
        "DISK_SNAPSHOT_REVERT_POWEROFF",
        "reconfiguring",
        4,
        u32::MAX,
    ),
    (
        "DISK_SNAPSHOT_DELETE_POWEROFF",
        "reconfiguring",
        4,
        u32::MAX,
    ),
    ("DISK_SNAPSHOT_SUSPENDED", "reconfiguring", 4, u32::MAX),
    ("DISK_SNAPSHOT_REVERT_SUSPENDED", "reconfiguring", 4, 5),
    (
        "DISK_SNAPSHOT_DELETE_SUSPENDED",
        "reconfiguring",
        4,
        u32::MAX,
    ),
    ("DISK_SNAPSHOT", "reconfiguring", 4, u32::MAX),
    ("DISK_SNAPSHOT_REVERT", "reconfiguring", 4, 4),
    ("DISK_SNAPSHOT_DELETE", "reconfiguring", 4, u32::MAX),
    ("PROLOG_MIGRATE_UNKNOWN", "migrating", 5, u32::MAX),
    ("PROLOG_MIGRATE_UNKNOWN_FAILURE", "error", 5, u32::MAX),
    ("DISK_RESIZE", "reconfiguring", 5, u32::MAX),
    ("DISK_RESIZE_POWEROFF", "reconfiguring", 5, u32::MAX),
    ("DISK_RESIZE_UNDEPLOYED", "reconfiguring", 5, u32::MAX),
    ("HOTPLUG_NIC_POWEROFF", "reconfiguring", 5, u32::MAX),
    ("HOTPLUG_RESIZE", "reconfiguring", 6, u32::MAX),
    ("HOTPLUG_SAVEAS_UNDEPLOYED", "reconfiguring", 6, u32::MAX),
    ("HOTPLUG_SAVEAS_STOPPED", "reconfiguring", 6, u32::MAX),
    // The VM keeps running while it is backed up.
    ("BACKUP", "running", 6, u32::MAX),
    ("BACKUP_POWEROFF", "stopped", 6, u32::MAX),
    ("RESTORE", "reconfiguring", 6, u32::MAX),
];

/// The `LCM_STATE` name of a value as OpenNebula `major` defines it; `None` when that version
/// does not (3.x: 0..=22; 4.x+: no 13, 14, and 23..=71 as [`LCM_4X`] dates them).
pub fn lcm_state_name_in(major: u32, lcm: i32) -> Option<&'static str> {
    if major <= 3 {
        return lcm_state_name(lcm);
    }
    match lcm {
        13 | 14 => None,
        15 => Some("CLEANUP_RESUBMIT"),
        0..=22 => lcm_state_name(lcm),
        _ => {
            let i = usize::try_from(lcm).ok()?.checked_sub(23)?;
            let (name, _, first, last) = LCM_4X.get(i)?;
            (*first <= major && major <= *last).then_some(*name)
        }
    }
}

/// The `STATE` name of a value as OpenNebula `major` defines it (4.x: no FAILED, UNDEPLOYED
/// added; 5.x: CLONING and CLONING_FAILURE added).
pub fn state_name_in(major: u32, state: i32) -> Option<&'static str> {
    match (major, state) {
        (0..=3, _) => state_name(state),
        (_, 7) => None,
        (_, 9) => Some("UNDEPLOYED"),
        (5.., 10) => Some("CLONING"),
        (5.., 11) => Some("CLONING_FAILURE"),
        _ => state_name(state),
    }
}

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
///
/// One table serves every version from 3.2 to 7.4: the numbers a later version added never
/// reuse one with another meaning (4.x+ LCM 23..=71 from [`LCM_4X`]; UNDEPLOYED 9 → `stopped`,
/// CLONING 10 → `pending`, CLONING_FAILURE 11 → `error`).
pub fn node_state(state: i32, lcm: i32) -> &'static str {
    match state {
        0..=2 | 10 => "pending",
        ACTIVE => lookup(&LCM_NODE_STATES, lcm)
            .or_else(|| {
                let i = usize::try_from(lcm).ok()?.checked_sub(23)?;
                LCM_4X.get(i).map(|e| e.1)
            })
            .unwrap_or("unknown"),
        4 | 8 | 9 => "stopped",
        5 => "suspended",
        6 => "terminated",
        7 | 11 => "error",
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
            (3, 23) => "stopping",
            (3, 24) => "reconfiguring",
            (3, _) => "unknown",
            (4, _) | (8, _) | (9, _) => "stopped",
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

    /// `(name, value)` of each enumerator of `enum VmState` / `enum LcmState` in an extract of
    /// OpenNebula's `include/VirtualMachine.h` (commented-out ones are retired).
    fn source_enum(text: &str, name: &str) -> Vec<(String, i32)> {
        let body = text
            .split(&format!("enum {name}"))
            .nth(1)
            .and_then(|t| t.split("};").next())
            .unwrap_or_default();
        body.lines()
            .filter_map(|l| {
                let l = l.trim();
                if l.starts_with("//") {
                    return None;
                }
                let (k, v) = l.split_once('=')?;
                let v: String = v
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == ' ')
                    .collect();
                Some((k.trim().to_owned(), v.trim().parse().ok()?))
            })
            .collect()
    }

    /// Every STATE and LCM_STATE number of 3.8.5, 4.14.2, 5.12.0, 6.10.0 and 7.4.0, from the
    /// sources (`tests/fixtures/opennebula-states/`): names as the version spells them, no
    /// reachable one maps to `unknown` (only UNKNOWN itself), retired ones have no name.
    #[test]
    fn every_number_of_every_version_from_the_sources() {
        for (tag, major) in [
            ("3.8.5", 3),
            ("4.14.2", 4),
            ("5.12.0", 5),
            ("6.10.0", 6),
            ("7.4.0", 7),
        ] {
            let path = format!(
                "{}/tests/fixtures/opennebula-states/VirtualMachine.h-release-{tag}.enums.txt",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let states = source_enum(&text, "VmState");
            let lcms = source_enum(&text, "LcmState");
            assert!(states.len() >= 9 && lcms.len() >= 23, "{tag}");
            for (name, value) in &states {
                assert_eq!(
                    state_name_in(major, *value),
                    Some(name.as_str()),
                    "{tag} {name}"
                );
                if *value != ACTIVE {
                    assert_ne!(node_state(*value, 0), "unknown", "{tag} {name}");
                }
            }
            for (name, value) in &lcms {
                assert_eq!(
                    lcm_state_name_in(major, *value),
                    Some(name.as_str()),
                    "{tag} {name}"
                );
                let got = node_state(ACTIVE, *value);
                assert!(NODE_STATES.contains(&got));
                assert_eq!(got == "unknown", name == "UNKNOWN", "{tag} {name}");
            }
            // Numbers the version does not define have no name.
            let max = lcms.iter().map(|(_, v)| *v).max().unwrap();
            for v in 0..=max + 1 {
                if !lcms.iter().any(|(_, x)| *x == v) {
                    assert_eq!(lcm_state_name_in(major, v), None, "{tag} LCM {v}");
                }
            }
            for v in 0..=12 {
                if !states.iter().any(|(_, x)| *x == v) {
                    assert_eq!(state_name_in(major, v), None, "{tag} STATE {v}");
                }
            }
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
