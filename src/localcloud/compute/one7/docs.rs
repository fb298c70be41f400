//! The documents of a 7.4 daemon, written as its captures show them
//! (`tests/fixtures/opennebula-7.4.0/`): `<IMAGE>`, `<VMTEMPLATE>`, `<VNET>` (pool and info
//! forms), and `<VM>` in its full form (`one.vm.info`, `one.vmpool.infoextended`) and its
//! short one (`one.vmpool.info`).

use std::fmt::Write as _;

use super::super::super::vmxml;
use super::super::{ComputeState, Hist, Vm};
use super::{Image, VmTemplate};
use crate::one::template::TemplateValue;

/// The attributes 7.4's `vm.xsd` declares in `TEMPLATE`; the others go to `USER_TEMPLATE`.
const TEMPLATE_KEYS: [&str; 40] = [
    "AUTOMATIC_DS_REQUIREMENTS",
    "AUTOMATIC_NIC_REQUIREMENTS",
    "AUTOMATIC_REQUIREMENTS",
    "CLONING_TEMPLATE_ID",
    "CONTEXT",
    "CPU",
    "CPU_COST",
    "DISK",
    "DISK_COST",
    "EMULATOR",
    "FEATURES",
    "HYPERV_OPTIONS",
    "GRAPHICS",
    "VIDEO",
    "IMPORTED",
    "INPUT",
    "MEMORY",
    "MEMORY_COST",
    "MEMORY_MAX",
    "MEMORY_SLOTS",
    "MEMORY_RESIZE_MODE",
    "NIC",
    "NIC_ALIAS",
    "NIC_DEFAULT",
    "NUMA_NODE",
    "OS",
    "PCI",
    "RAW",
    "SECURITY_GROUP_RULE",
    "SNAPSHOT",
    "SPICE_OPTIONS",
    "SUBMIT_ON_HOLD",
    "TEMPLATE_ID",
    "TM_MAD_SYSTEM",
    "TOPOLOGY",
    "VCPU",
    "VCPU_MAX",
    "VMGROUP",
    "VMID",
    "VROUTER_ID",
];

pub(super) fn permissions(out: &mut String, group_u: bool) {
    out.push_str("<PERMISSIONS>");
    for (name, v) in [
        ("OWNER_U", 1),
        ("OWNER_M", 1),
        ("OWNER_A", 0),
        ("GROUP_U", i64::from(group_u)),
        ("GROUP_M", 0),
        ("GROUP_A", 0),
        ("OTHER_U", 0),
        ("OTHER_M", 0),
        ("OTHER_A", 0),
    ] {
        vmxml::num(out, name, v);
    }
    out.push_str("</PERMISSIONS>");
}

pub(super) fn owner(
    out: &mut String,
    id: i64,
    uid: i64,
    gid: i64,
    uname: &str,
    gname: &str,
    name: &str,
) {
    vmxml::num(out, "ID", id);
    vmxml::num(out, "UID", uid);
    vmxml::num(out, "GID", gid);
    vmxml::text_element(out, "UNAME", uname);
    vmxml::text_element(out, "GNAME", gname);
    vmxml::text_element(out, "NAME", name);
}

pub(super) fn write_image(i: &Image, out: &mut String) {
    out.push_str("<IMAGE>");
    owner(out, i.id, i.uid, i.gid, &i.uname, &i.gname, &i.name);
    permissions(out, false);
    vmxml::num(out, "TYPE", i.kind.into());
    vmxml::num(out, "DISK_TYPE", 0);
    vmxml::num(out, "PERSISTENT", i.persistent.into());
    vmxml::num(out, "REGTIME", i.regtime);
    vmxml::num(out, "MODTIME", i.regtime);
    vmxml::cdata_element(out, "SOURCE", "dummy_path");
    out.push_str("<PATH><![CDATA[");
    out.push_str(&i.path);
    out.push_str("]]></PATH>");
    vmxml::cdata_element(out, "FORMAT", &i.format);
    out.push_str("<FS><![CDATA[]]></FS>");
    vmxml::num(out, "SIZE", i64::try_from(i.size_mib).unwrap_or(i64::MAX));
    vmxml::num(out, "STATE", i.state().into());
    vmxml::num(out, "PREV_STATE", i.state().into());
    vmxml::num(out, "RUNNING_VMS", i.vms.len() as i64);
    vmxml::num(out, "CLONING_OPS", 0);
    vmxml::num(out, "CLONING_ID", -1);
    vmxml::num(out, "TARGET_SNAPSHOT", -1);
    vmxml::num(out, "DATASTORE_ID", 1);
    vmxml::text_element(out, "DATASTORE", "default");
    out.push_str("<VMS>");
    for vm in &i.vms {
        vmxml::num(out, "ID", *vm);
    }
    out.push_str("</VMS><CLONES></CLONES><APP_CLONES></APP_CLONES><TEMPLATE>");
    if let Some(d) = &i.description {
        vmxml::cdata_element(out, "DESCRIPTION", d);
    }
    vmxml::cdata_element(out, "DEV_PREFIX", "sd");
    out.push_str("</TEMPLATE><SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE><NEXT_SNAPSHOT><![CDATA[0]]></NEXT_SNAPSHOT></SNAPSHOTS><BACKUP_INCREMENTS></BACKUP_INCREMENTS><BACKUP_DISK_IDS></BACKUP_DISK_IDS></IMAGE>");
}

pub(super) fn write_template(t: &VmTemplate, out: &mut String) {
    out.push_str("<VMTEMPLATE>");
    owner(out, t.id, t.uid, t.gid, &t.uname, &t.gname, &t.name);
    permissions(out, false);
    vmxml::num(out, "REGTIME", t.regtime);
    out.push_str("<TEMPLATE>");
    let mut attrs: Vec<&(String, TemplateValue)> = t.attrs.iter().collect();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in attrs {
        vmxml::write_attribute(k, v, out);
    }
    out.push_str("</TEMPLATE></VMTEMPLATE>");
}

/// `<VNET>` of `one.vnpool.info`, or of `one.vn.info` (`full`: the range's end and leases).
pub(super) fn write_vnet(c: &ComputeState, index: usize, full: bool, out: &mut String) {
    let Some(n) = c.networks.get(index) else {
        return;
    };
    out.push_str("<VNET>");
    owner(out, index as i64, 0, 0, "oneadmin", "oneadmin", &n.name);
    permissions(out, true);
    out.push_str("<CLUSTERS><ID>0</ID></CLUSTERS>");
    vmxml::cdata_element(out, "BRIDGE", &n.bridge);
    out.push_str("<BRIDGE_TYPE><![CDATA[linux]]></BRIDGE_TYPE><STATE><![CDATA[1]]></STATE><PREV_STATE><![CDATA[1]]></PREV_STATE><PARENT_NETWORK_ID/><TEMPLATE_ID/><VN_MAD><![CDATA[dummy]]></VN_MAD><PHYDEV/><VLAN_ID/><OUTER_VLAN_ID/><VLAN_ID_AUTOMATIC>0</VLAN_ID_AUTOMATIC><OUTER_VLAN_ID_AUTOMATIC>0</OUTER_VLAN_ID_AUTOMATIC>");
    vmxml::num(out, "USED_LEASES", n.used.len() as i64);
    out.push_str("<VROUTERS></VROUTERS><UPDATED_VMS></UPDATED_VMS><OUTDATED_VMS></OUTDATED_VMS><UPDATING_VMS></UPDATING_VMS><ERROR_VMS></ERROR_VMS><TEMPLATE>");
    vmxml::cdata_element(out, "BRIDGE", &n.bridge);
    out.push_str("<BRIDGE_TYPE><![CDATA[linux]]></BRIDGE_TYPE><SECURITY_GROUPS><![CDATA[0]]></SECURITY_GROUPS><VN_MAD><![CDATA[dummy]]></VN_MAD></TEMPLATE><AR_POOL><AR><AR_ID><![CDATA[0]]></AR_ID>");
    let ip = std::net::Ipv4Addr::from(n.first);
    let o = ip.octets();
    vmxml::cdata_element(out, "IP", &ip.to_string());
    vmxml::cdata_element(
        out,
        "MAC",
        &format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
    );
    vmxml::cdata_element(out, "NEXT_INDEX", &n.next.to_string());
    out.push_str("<SHARED><![CDATA[NO]]></SHARED>");
    vmxml::cdata_element(out, "SIZE", &n.count.to_string());
    out.push_str("<TYPE><![CDATA[IP4]]></TYPE>");
    if full {
        let last = std::net::Ipv4Addr::from(n.first.saturating_add(n.count.saturating_sub(1)));
        let l = last.octets();
        vmxml::cdata_element(
            out,
            "MAC_END",
            &format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", l[0], l[1], l[2], l[3]),
        );
        vmxml::cdata_element(out, "IP_END", &last.to_string());
        vmxml::num(out, "USED_LEASES", n.used.len() as i64);
    }
    out.push_str("</AR></AR_POOL></VNET>");
}

// ------------------------------------------------------------------------------------------
// 7.x VM documents
// ------------------------------------------------------------------------------------------

/// `<VM>` of `one.vm.info` / `one.vmpool.infoextended` (`full`), or of `one.vmpool.info`.
pub(in super::super) fn write_vm(vm: &Vm, full: bool, out: &mut String) {
    out.push_str("<VM>");
    vmxml::num(out, "ID", vm.id);
    vmxml::num(out, "UID", vm.uid);
    vmxml::num(out, "GID", vm.gid);
    vmxml::text_element(out, "UNAME", &vm.uname);
    vmxml::text_element(out, "GNAME", &vm.gname);
    vmxml::text_element(out, "NAME", &vm.name);
    if full {
        permissions(out, false);
    }
    vmxml::num(out, "LAST_POLL", vm.last_poll);
    vmxml::num(out, "STATE", vm.state.into());
    vmxml::num(out, "LCM_STATE", vm.lcm.into());
    if full {
        vmxml::num(out, "PREV_STATE", vm.state.into());
        vmxml::num(out, "PREV_LCM_STATE", vm.lcm.into());
    }
    vmxml::num(out, "RESCHED", vm.resched.into());
    vmxml::num(out, "STIME", vm.stime);
    vmxml::num(out, "ETIME", vm.etime);
    vmxml::text_element(out, "DEPLOY_ID", &vm.deploy_id);
    if full {
        out.push_str("<MONITORING></MONITORING><SCHED_ACTIONS></SCHED_ACTIONS>");
        write_full_template(vm, out);
    } else {
        write_short_template(vm, out);
        out.push_str("<MONITORING/><USER_TEMPLATE/>");
    }
    if vm.history.is_empty() {
        out.push_str("<HISTORY_RECORDS/>");
    } else {
        out.push_str("<HISTORY_RECORDS>");
        let current = vm.history.len().saturating_sub(1);
        let records = if full {
            &vm.history[..]
        } else {
            &vm.history[current..]
        };
        for h in records {
            write_history(vm.id, h, full, out);
        }
        out.push_str("</HISTORY_RECORDS>");
    }
    if full {
        out.push_str("<BACKUPS><BACKUP_CONFIG/><BACKUP_IDS></BACKUP_IDS></BACKUPS>");
    }
    out.push_str("</VM>");
}

fn write_full_template(vm: &Vm, out: &mut String) {
    let mut known: Vec<(&str, &TemplateValue)> = Vec::new();
    let mut user: Vec<(&str, &TemplateValue)> = Vec::new();
    for (k, v) in &vm.template {
        if k == "NAME" {
            continue;
        }
        if TEMPLATE_KEYS.contains(&k.as_str()) {
            known.push((k, v));
        } else {
            user.push((k, v));
        }
    }
    let tm = TemplateValue::Single("dummy".into());
    if !vm.history.is_empty() {
        known.push(("TM_MAD_SYSTEM", &tm));
    }
    known.sort_by(|a, b| a.0.cmp(b.0));
    out.push_str("<TEMPLATE>");
    for (k, v) in known {
        vmxml::write_attribute(k, v, out);
    }
    out.push_str("</TEMPLATE><USER_TEMPLATE>");
    for (k, v) in user {
        vmxml::write_attribute(k, v, out);
    }
    out.push_str("</USER_TEMPLATE>");
}

/// The short body's TEMPLATE: CPU, MEMORY, VCPU as text, and a few keys of each DISK and NIC
/// in oned's order (`VirtualMachine::to_xml_short`).
fn write_short_template(vm: &Vm, out: &mut String) {
    let single = |key: &str| {
        vm.template.iter().find_map(|(k, v)| match v {
            TemplateValue::Single(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    };
    out.push_str("<TEMPLATE>");
    for key in ["CPU", "MEMORY", "VCPU"] {
        let value = single(key).unwrap_or("");
        let _ = write!(out, "<{key}>");
        push_escaped(out, value);
        let _ = write!(out, "</{key}>");
    }
    const DISK_KEYS: [&str; 11] = [
        "DISK_ID",
        "DATASTORE",
        "DATASTORE_ID",
        "IMAGE",
        "IMAGE_ID",
        "SIZE",
        "TARGET",
        "TYPE",
        "CLONE",
        "CLONE_TARGET",
        "LN_TARGET",
    ];
    const NIC_KEYS: [&str; 6] = [
        "IP",
        "MAC",
        "NETWORK",
        "NETWORK_ID",
        "NIC_ID",
        "SECURITY_GROUPS",
    ];
    for (name, keys) in [("DISK", &DISK_KEYS[..]), ("NIC", &NIC_KEYS[..])] {
        for (k, v) in &vm.template {
            let TemplateValue::Vector(pairs) = v else {
                continue;
            };
            if k != name {
                continue;
            }
            vmxml::open_tag(out, name);
            for key in keys {
                if let Some((_, value)) = pairs.iter().find(|(pk, _)| pk == key) {
                    vmxml::cdata_element(out, key, value);
                }
            }
            vmxml::close_tag(out, name);
        }
    }
    out.push_str("</TEMPLATE>");
}

fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
}

fn write_history(oid: i64, h: &Hist, full: bool, out: &mut String) {
    out.push_str("<HISTORY>");
    vmxml::num(out, "OID", oid);
    vmxml::num(out, "SEQ", h.seq);
    if full {
        vmxml::text_element(out, "HOSTNAME", &h.hostname);
    } else {
        vmxml::cdata_element(out, "HOSTNAME", &h.hostname);
    }
    vmxml::num(out, "HID", h.hid);
    vmxml::num(out, "CID", 0);
    if !full {
        vmxml::num(out, "DS_ID", 0);
        out.push_str("<VM_MAD><![CDATA[dummy]]></VM_MAD><TM_MAD><![CDATA[dummy]]></TM_MAD><ACTION><![CDATA[0]]></ACTION></HISTORY>");
        return;
    }
    vmxml::num(out, "STIME", h.stime);
    vmxml::num(out, "ETIME", h.etime);
    out.push_str("<VM_MAD><![CDATA[dummy]]></VM_MAD><TM_MAD><![CDATA[dummy]]></TM_MAD>");
    vmxml::num(out, "DS_ID", 0);
    vmxml::num(out, "PLAN_ID", -1);
    vmxml::num(out, "ACTION_ID", 0);
    vmxml::num(out, "PSTIME", h.pstime);
    vmxml::num(out, "PETIME", h.petime);
    vmxml::num(out, "RSTIME", h.rstime);
    vmxml::num(out, "RETIME", h.retime);
    vmxml::num(out, "ESTIME", h.estime);
    vmxml::num(out, "EETIME", h.eetime);
    vmxml::num(out, "ACTION", 0);
    vmxml::num(out, "UID", -1);
    vmxml::num(out, "GID", -1);
    vmxml::num(out, "REQUEST_ID", -1);
    out.push_str("</HISTORY>");
}
