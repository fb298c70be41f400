//! OpenNebula 7.4 (dialect [`Dialect::One7`]) and plain OpenNebula sites: what a 7.4 daemon
//! adds to the StratusLab-era methods, as the captures in `tests/fixtures/opennebula-7.4.0/`
//! show it.
//!
//! - Documents: the 7.x `<VM>` (PREV_STATE, PREV_LCM_STATE, MONITORING, SCHED_ACTIONS,
//!   USER_TEMPLATE with the attributes `vm.xsd` does not declare, renamed HISTORY fields,
//!   BACKUPS) from `one.vm.info` and `one.vmpool.infoextended`, and the short body of
//!   `one.vmpool.info`; pools in descending id order.
//! - `one.vm.recover(id, op)` (0 failure, 1 success, 2 retry, 3 delete, 4 delete-recreate,
//!   5 delete-db), refused in the states the daemon refuses it.
//! - On a plain site (`site_type = opennebula`): the image pool (an OS image `ttylinux` and a
//!   DATABLOCK `datablock1`, as the captures' daemon had them, plus the caller's), the VM
//!   template pool (`tmpl1`) and `one.template.instantiate`, the vnet pool, `one.image.allocate`
//!   / `delete`, and disk hot-plug (`one.vm.attach` / `detach`: LCM HOTPLUG for one step);
//!   persistent images are locked by the VM using them until it is DONE or the disk detached.

use std::collections::{BTreeMap, BTreeSet};

mod docs;
pub(super) use docs::write_vm;
use docs::{write_image, write_template, write_vnet};

use super::{
    int_param, str_param, success, ComputeState, Dialect, Ev, Fault, User, Vm, ACTION, ACTIVE,
    AUTHORIZATION, BOOT, DONE, HOLD, INTERNAL, LCM_INIT, NO_EXISTS, PENDING, POWEROFF, PROLOG,
    RUNNING,
};
use crate::one::template::{self, TemplateValue};
use crate::xmlrpc::Value;

/// `ALLOCATE` (include/Request.h, 5.x+).
const ALLOCATE: i64 = 0x4000;
/// LCM states 7.x uses here (include/VirtualMachine.h, release-7.4.0).
const HOTPLUG: i32 = 17;
const BOOT_FAILURE: i32 = 36;
const PROLOG_FAILURE: i32 = 39;
const EPILOG_FAILURE: i32 = 40;

/// Methods only a plain site serves.
const PLAIN_METHODS: [&str; 11] = [
    "one.imagepool.info",
    "one.image.info",
    "one.image.allocate",
    "one.image.delete",
    "one.templatepool.info",
    "one.template.info",
    "one.template.instantiate",
    "one.vnpool.info",
    "one.vn.info",
    "one.vm.attach",
    "one.vm.detach",
];

/// Methods every 7.x site serves besides the StratusLab-era ones.
const SEVEN_METHODS: [&str; 2] = ["one.vmpool.infoextended", "one.vm.recover"];

/// An image of a plain site's pool.
#[derive(Debug, Clone)]
pub(super) struct Image {
    id: i64,
    uid: i64,
    gid: i64,
    uname: String,
    gname: String,
    name: String,
    /// 0 OS, 2 DATABLOCK.
    kind: i32,
    persistent: bool,
    size_mib: u64,
    regtime: i64,
    format: String,
    path: String,
    description: Option<String>,
    /// VMs using it (a persistent image: at most one).
    vms: BTreeSet<i64>,
}

impl Image {
    /// READY 1, USED 2, USED_PERS 8.
    fn state(&self) -> i32 {
        match (self.vms.is_empty(), self.persistent) {
            (true, _) => 1,
            (false, false) => 2,
            (false, true) => 8,
        }
    }
}

/// A VM template of a plain site's pool.
#[derive(Debug, Clone)]
pub(super) struct VmTemplate {
    id: i64,
    uid: i64,
    gid: i64,
    uname: String,
    gname: String,
    name: String,
    regtime: i64,
    attrs: Vec<(String, TemplateValue)>,
}

/// What a plain site serves besides VMs.
#[derive(Debug, Default)]
pub struct PlainState {
    images: BTreeMap<i64, Image>,
    next_image: i64,
    templates: BTreeMap<i64, VmTemplate>,
}

impl PlainState {
    /// The pools of the captures' daemon: images 0 `ttylinux` (OS, 1024 MiB) and 1
    /// `datablock1` (DATABLOCK, 16 MiB), template 0 `tmpl1`.
    pub fn seeded(now: i64) -> PlainState {
        let admin =
            |id, name: &str, kind, size_mib, format: &str, path: &str, d: Option<&str>| Image {
                id,
                uid: 0,
                gid: 0,
                uname: "oneadmin".into(),
                gname: "oneadmin".into(),
                name: name.into(),
                kind,
                persistent: false,
                size_mib,
                regtime: now,
                format: format.into(),
                path: path.into(),
                description: d.map(str::to_owned),
                vms: BTreeSet::new(),
            };
        let mut images = BTreeMap::new();
        images.insert(
            0,
            admin(
                0,
                "ttylinux",
                0,
                1024,
                "dummy_format",
                "/var/tmp/ttylinux.img",
                Some("dummy ttylinux"),
            ),
        );
        images.insert(1, admin(1, "datablock1", 2, 16, "raw", "", None));
        let mut templates = BTreeMap::new();
        let attrs = template::parse("CPU=1 MEMORY=64 DISK=[IMAGE_ID=0] NIC=[NETWORK=\"public\"]")
            .unwrap_or_default();
        templates.insert(
            0,
            VmTemplate {
                id: 0,
                uid: 0,
                gid: 0,
                uname: "oneadmin".into(),
                gname: "oneadmin".into(),
                name: "tmpl1".into(),
                regtime: now,
                attrs,
            },
        );
        PlainState {
            images,
            next_image: 2,
            templates,
        }
    }
}

/// Whether the site serves `method` beyond the dialect's base set.
pub(super) fn serves(c: &ComputeState, method: &str) -> bool {
    (c.dialect == Dialect::One7 && SEVEN_METHODS.contains(&method))
        || (c.plain.is_some() && PLAIN_METHODS.contains(&method))
}

fn failure(c: &ComputeState, code: i64, method: &str, message: &str, id: i64) -> Value {
    c.failure(code, format!("[{method}] {message}"), id)
}

fn can_use(user: &User, uid: i64) -> bool {
    user.gid == 0 || uid == user.id
}

/// One call of [`PLAIN_METHODS`] or [`SEVEN_METHODS`].
pub(super) fn call(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    match method {
        "one.vmpool.infoextended" => c.pool_info(user, method, params),
        "one.vm.recover" => recover(c, now, user, method, params),
        "one.imagepool.info" | "one.templatepool.info" | "one.vnpool.info" => {
            let filter = int_param(params, 1)?;
            int_param(params, 2)?;
            int_param(params, 3)?;
            Ok(success(Value::String(pool(c, user, method, filter))))
        }
        "one.image.info" | "one.template.info" | "one.vn.info" => {
            let id = int_param(params, 1)?;
            Ok(object_info(c, user, method, id))
        }
        "one.image.allocate" => image_allocate(c, now, user, method, params),
        "one.image.delete" => {
            let id = int_param(params, 1)?;
            Ok(image_delete(c, user, method, id))
        }
        "one.template.instantiate" => instantiate(c, now, user, method, params),
        "one.vm.attach" => attach(c, now, user, method, params),
        "one.vm.detach" => detach(c, now, user, method, params),
        _ => Err((
            crate::xmlrpc::FAULT_NO_SUCH_METHOD,
            format!("Method '{method}' not defined"),
        )),
    }
}

fn pool(c: &ComputeState, user: &User, method: &str, filter: i64) -> String {
    let visible = |uid: i64| match filter {
        -3 => uid == user.id,
        -2 | -1 => user.gid == 0 || uid == user.id || uid == 0,
        other => uid == other && (user.gid == 0 || other == user.id || other == 0),
    };
    let mut out = String::new();
    let Some(plain) = &c.plain else {
        return out;
    };
    match method {
        "one.imagepool.info" => {
            out.push_str("<IMAGE_POOL>");
            for image in plain.images.values().rev().filter(|i| visible(i.uid)) {
                write_image(image, &mut out);
            }
            out.push_str("</IMAGE_POOL>");
        }
        "one.templatepool.info" => {
            out.push_str("<VMTEMPLATE_POOL>");
            for t in plain.templates.values().rev().filter(|t| visible(t.uid)) {
                write_template(t, &mut out);
            }
            out.push_str("</VMTEMPLATE_POOL>");
        }
        _ => {
            out.push_str("<VNET_POOL>");
            for index in (0..c.networks.len()).rev() {
                write_vnet(c, index, false, &mut out);
            }
            out.push_str("</VNET_POOL>");
        }
    }
    out
}

fn object_info(c: &ComputeState, user: &User, method: &str, id: i64) -> Value {
    let (what, kind) = match method {
        "one.image.info" => ("image", "IMAGE"),
        "one.template.info" => ("virtual machine template", "TEMPLATE"),
        _ => ("virtual network", "NET"),
    };
    let missing = || {
        failure(
            c,
            NO_EXISTS,
            method,
            &format!("Error getting {what} [{id}]."),
            id,
        )
    };
    let Some(plain) = &c.plain else {
        return missing();
    };
    let mut out = String::new();
    let owner = match method {
        "one.image.info" => plain.images.get(&id).map(|i| {
            write_image(i, &mut out);
            i.uid
        }),
        "one.template.info" => plain.templates.get(&id).map(|t| {
            write_template(t, &mut out);
            t.uid
        }),
        _ => usize::try_from(id)
            .ok()
            .filter(|i| *i < c.networks.len())
            .map(|i| {
                write_vnet(c, i, true, &mut out);
                0
            }),
    };
    match owner {
        None => missing(),
        Some(uid) if uid != 0 && !can_use(user, uid) => failure(
            c,
            AUTHORIZATION,
            method,
            &format!(
                "User [{}] : Not authorized to perform USE {kind} [{id}].",
                user.id
            ),
            -1,
        ),
        Some(_) => success(Value::String(out)),
    }
}

fn image_allocate(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let text = str_param(params, 1)?.to_owned();
    let ds = int_param(params, 2)?;
    if ds != 1 && ds != 0 && ds != 2 {
        return Ok(failure(
            c,
            NO_EXISTS,
            method,
            &format!("Error getting datastore [{ds}]."),
            ds,
        ));
    }
    if ds == 0 {
        return Ok(failure(
            c,
            ALLOCATE,
            method,
            "Error allocating a new image. New images can only be allocated in a files or image datastore.",
            -1,
        ));
    }
    let attrs = match template::parse(&text) {
        Ok(a) => a,
        Err(e) => return Ok(failure(c, INTERNAL, method, &e.to_string(), -1)),
    };
    let single = |key: &str| {
        attrs.iter().find_map(|(k, v)| match v {
            TemplateValue::Single(s) if k == key => Some(s.clone()),
            _ => None,
        })
    };
    let name = single("NAME").unwrap_or_default();
    if let Some(bad) = name_error(&name) {
        return Ok(failure(
            c,
            ALLOCATE,
            method,
            &format!("Error allocating a new image. {bad}"),
            -1,
        ));
    }
    let Some(plain) = c.plain.as_mut() else {
        return Ok(failure(c, INTERNAL, method, "no image pool", -1));
    };
    if let Some(taken) = plain
        .images
        .values()
        .find(|i| i.name == name && i.uid == user.id)
    {
        let message = format!(
            "Error allocating a new image. NAME is already taken by IMAGE {}.",
            taken.id
        );
        return Ok(failure(c, ALLOCATE, method, &message, -1));
    }
    let kind = match single("TYPE").map(|t| t.to_uppercase()).as_deref() {
        Some("DATABLOCK") => 2,
        Some("OS") | None => 0,
        Some(other) => {
            let message = format!("Error allocating a new image. Unknown image type {other}");
            return Ok(failure(c, ALLOCATE, method, &message, -1));
        }
    };
    let size = single("SIZE").and_then(|s| s.trim().parse::<u64>().ok());
    let Some(size_mib) = size.filter(|s| *s > 0) else {
        return Ok(failure(
            c,
            ALLOCATE,
            method,
            "Error allocating a new image. SIZE attribute must be a positive integer value.",
            -1,
        ));
    };
    let persistent = single("PERSISTENT").is_some_and(|p| p.eq_ignore_ascii_case("YES"));
    let id = plain.next_image;
    plain.next_image += 1;
    plain.images.insert(
        id,
        Image {
            id,
            uid: user.id,
            gid: user.gid,
            uname: user.name.clone(),
            gname: user.gname.clone(),
            name,
            kind,
            persistent,
            size_mib,
            regtime: now / 1_000_000,
            format: "raw".into(),
            path: String::new(),
            description: single("DESCRIPTION"),
            vms: BTreeSet::new(),
        },
    );
    Ok(success(Value::Int(id)))
}

/// oned 7.4's NAME check (`PoolObjectSQL::name_is_valid`).
fn name_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("Invalid NAME, it cannot be empty".into());
    }
    name.chars()
        .find(|c| "&|:;/'#{}<>\\\"$\t\n\u{b}\u{c}\r".contains(*c))
        .map(|c| format!("Invalid NAME, char '{c}' is not allowed"))
}

fn image_delete(c: &mut ComputeState, user: &User, method: &str, id: i64) -> Value {
    let found = c.plain.as_ref().and_then(|p| p.images.get(&id)).cloned();
    let Some(image) = found else {
        return failure(
            c,
            NO_EXISTS,
            method,
            &format!("Error getting image [{id}]."),
            id,
        );
    };
    if !can_use(user, image.uid) {
        let message = format!(
            "User [{}] : Not authorized to perform MANAGE IMAGE [{id}].",
            user.id
        );
        return failure(c, AUTHORIZATION, method, &message, -1);
    }
    if !image.vms.is_empty() {
        let message = format!(
            "Cannot delete image. There are {} VMs using it.",
            image.vms.len()
        );
        return failure(c, ACTION, method, &message, -1);
    }
    if let Some(p) = c.plain.as_mut() {
        p.images.remove(&id);
    }
    success(Value::Int(id))
}

fn instantiate(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let tid = int_param(params, 1)?;
    let name = str_param(params, 2)?.to_owned();
    let hold = match params.get(3) {
        Some(v) => v.as_bool().ok_or_else(|| {
            (
                crate::xmlrpc::FAULT_PARAMETERS,
                "Parameter that is supposed to be boolean is not".to_owned(),
            )
        })?,
        None => false,
    };
    let extra = match params.get(4) {
        Some(_) => str_param(params, 4)?.to_owned(),
        None => String::new(),
    };
    let found = c
        .plain
        .as_ref()
        .and_then(|p| p.templates.get(&tid))
        .cloned();
    let Some(t) = found else {
        let message = format!("Error getting virtual machine template [{tid}].");
        return Ok(failure(c, NO_EXISTS, method, &message, tid));
    };
    if t.uid != 0 && !can_use(user, t.uid) {
        let message = format!(
            "User [{}] : Not authorized to perform USE TEMPLATE [{tid}].",
            user.id
        );
        return Ok(failure(c, AUTHORIZATION, method, &message, -1));
    }
    if !name.is_empty() {
        if let Some(bad) = name_error(&name) {
            let message = format!("Error allocating a new virtual machine template. {bad}");
            return Ok(failure(c, ALLOCATE, method, &message, -1));
        }
    }
    let extra_attrs = if extra.trim().is_empty() {
        Vec::new()
    } else {
        match template::parse(&extra) {
            Ok(a) => a,
            Err(e) => return Ok(failure(c, INTERNAL, method, &e.to_string(), -1)),
        }
    };
    // TemplateInstantiate merges the extra template: an attribute given there replaces the
    // template's attributes of that name.
    let mut attrs: Vec<(String, TemplateValue)> = t
        .attrs
        .iter()
        .filter(|(k, _)| !extra_attrs.iter().any(|(e, _)| e == k))
        .cloned()
        .collect();
    attrs.extend(extra_attrs);
    attrs.retain(|(k, _)| k != "NAME");
    let vm_name = if name.is_empty() {
        format!("{}-{}", t.name, c.next_id)
    } else {
        name
    };
    attrs.push(("NAME".into(), TemplateValue::Single(vm_name)));
    attrs.push(("TEMPLATE_ID".into(), TemplateValue::Single(tid.to_string())));
    let text = attrs
        .iter()
        .map(|(k, v)| match v {
            TemplateValue::Single(s) => format!("{k} = \"{}\"", s.replace('"', "\\\"")),
            TemplateValue::Vector(pairs) => format!(
                "{k} = [ {} ]",
                pairs
                    .iter()
                    .map(|(pk, pv)| format!("{pk} = \"{}\"", pv.replace('"', "\\\"")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let id = c.next_id;
    match c.instantiate(id, user, attrs, text, now / 1_000_000) {
        Ok(()) => {
            c.next_id += 1;
            if hold {
                if let Some(vm) = c.vms.get_mut(&id) {
                    vm.state = HOLD;
                }
            } else {
                c.deploy_plan(id, now, PROLOG, BOOT);
            }
            Ok(success(Value::Int(id)))
        }
        Err(detail) => {
            let message = format!("Error allocating a new virtual machine. {detail}");
            Ok(failure(c, INTERNAL, method, &message, -1))
        }
    }
}

/// DISK expansion on a plain site: the image must exist, be usable by the caller, and, when
/// persistent, be free. `vm` is the VM the disk is for.
pub(super) fn expand_disk(
    c: &ComputeState,
    disk: &mut BTreeMap<String, String>,
    disk_id: usize,
    owner: i64,
    admin: bool,
) -> Result<(), String> {
    let Some(plain) = &c.plain else {
        return Err("no image pool".into());
    };
    let image = match (disk.get("IMAGE_ID"), disk.get("IMAGE")) {
        (Some(iid), _) => {
            let iid = iid
                .trim()
                .parse::<i64>()
                .map_err(|_| "Wrong ID set in IMAGE_ID".to_owned())?;
            plain
                .images
                .get(&iid)
                .ok_or_else(|| format!("Image with ID: {iid} does not exist"))?
        }
        (None, Some(name)) => plain
            .images
            .values()
            .find(|i| &i.name == name && (i.uid == owner || i.uid == 0))
            .ok_or_else(|| format!("Image {name} does not exist for user {owner}"))?,
        (None, None) => {
            let kind = disk.get("TYPE").cloned().unwrap_or_default().to_uppercase();
            if kind != "SWAP" && kind != "FS" {
                return Err(format!("Unknown disk type {kind}"));
            }
            disk.insert("DISK_ID".into(), disk_id.to_string());
            return Ok(());
        }
    };
    if !(admin || image.uid == owner || image.uid == 0) {
        return Err(format!(
            "User [{owner}] : Not authorized to perform USE IMAGE [{}].",
            image.id
        ));
    }
    if image.persistent && !image.vms.is_empty() {
        return Err(format!(
            "Cannot acquire image {}, it is persistent and already in use",
            image.id
        ));
    }
    let letter = char::from(b'a' + (disk_id % 26) as u8);
    for (k, v) in [
        ("CLONE", if image.persistent { "NO" } else { "YES" }),
        ("CLONE_TARGET", "SYSTEM"),
        ("DATASTORE", "default"),
        ("DATASTORE_ID", "1"),
        ("DEV_PREFIX", "sd"),
        ("DISK_TYPE", "FILE"),
        ("DRIVER", image.format.as_str()),
        ("FORMAT", image.format.as_str()),
        ("IMAGE", image.name.as_str()),
        ("LN_TARGET", "NONE"),
        ("PERSISTENT", if image.persistent { "YES" } else { "NO" }),
        ("READONLY", "NO"),
        ("SAVE", if image.persistent { "YES" } else { "NO" }),
        ("SOURCE", "dummy_path"),
        ("TM_MAD", "dummy"),
        ("TYPE", "FILE"),
    ] {
        disk.insert(k.into(), v.into());
    }
    disk.insert("IMAGE_ID".into(), image.id.to_string());
    disk.insert("SIZE".into(), image.size_mib.to_string());
    disk.insert("ORIGINAL_SIZE".into(), image.size_mib.to_string());
    disk.entry("TARGET".into())
        .or_insert_with(|| format!("sd{letter}"));
    disk.insert("DISK_ID".into(), disk_id.to_string());
    Ok(())
}

/// The image ids of a VM's DISKs.
fn disk_images(vm: &Vm) -> Vec<i64> {
    vm.template
        .iter()
        .filter_map(|(k, v)| match v {
            TemplateValue::Vector(pairs) if k == "DISK" => pairs
                .iter()
                .find(|(pk, _)| pk == "IMAGE_ID")
                .and_then(|(_, iid)| iid.parse().ok()),
            _ => None,
        })
        .collect()
}

/// Marks the images of VM `id`'s disks as used by it (after it was created).
pub(super) fn acquire_images(c: &mut ComputeState, id: i64) {
    let Some(vm) = c.vms.get(&id) else {
        return;
    };
    let images = disk_images(vm);
    if let Some(plain) = c.plain.as_mut() {
        for iid in images {
            if let Some(image) = plain.images.get_mut(&iid) {
                image.vms.insert(id);
            }
        }
    }
}

/// Frees the images VM `id` holds (it is DONE).
pub(super) fn release_images(c: &mut ComputeState, id: i64) {
    if let Some(plain) = c.plain.as_mut() {
        for image in plain.images.values_mut() {
            image.vms.remove(&id);
        }
    }
}

fn vm_or_error(
    c: &ComputeState,
    user: &User,
    method: &str,
    id: i64,
    op: &str,
) -> Result<(), Value> {
    let Some(vm) = c.vms.get(&id) else {
        return Err(c.get_error(method, id));
    };
    if user.gid == 0 || vm.uid == user.id {
        return Ok(());
    }
    Err(failure(
        c,
        AUTHORIZATION,
        method,
        &format!(
            "User [{}] : Not authorized to perform {op} VM [{id}].",
            user.id
        ),
        -1,
    ))
}

fn attach(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let id = int_param(params, 1)?;
    let text = str_param(params, 2)?.to_owned();
    if let Err(reply) = vm_or_error(c, user, method, id, "MANAGE") {
        return Ok(reply);
    }
    let attrs = match template::parse(&text) {
        Ok(a) => a,
        Err(e) => return Ok(failure(c, INTERNAL, method, &e.to_string(), -1)),
    };
    let Some(TemplateValue::Vector(pairs)) =
        attrs.into_iter().find(|(k, _)| k == "DISK").map(|(_, v)| v)
    else {
        return Ok(failure(
            c,
            INTERNAL,
            method,
            "Wrong number of DISK attributes.",
            -1,
        ));
    };
    let (state, lcm, uid, next_disk) = match c.vms.get(&id) {
        Some(vm) => (
            vm.state,
            vm.lcm,
            vm.uid,
            vm.template
                .iter()
                .filter(|(k, _)| k == "DISK")
                .filter_map(|(_, v)| match v {
                    TemplateValue::Vector(p) => p
                        .iter()
                        .find(|(pk, _)| pk == "DISK_ID")
                        .and_then(|(_, d)| d.parse::<usize>().ok()),
                    _ => None,
                })
                .max()
                .map_or(0, |m| m + 1),
        ),
        None => return Ok(c.get_error(method, id)),
    };
    if state == HOLD || state == PENDING {
        return Ok(failure(
            c,
            ACTION,
            method,
            "VM is not running in any host",
            -1,
        ));
    }
    if !((state == ACTIVE && lcm == RUNNING) || state == POWEROFF) {
        let message = format!(
            "Error performing action \"disk-attach\": This action is not available for state {}",
            super::state_str(state, lcm)
        );
        return Ok(failure(c, ACTION, method, &message, -1));
    }
    let mut disk: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        disk.entry(k).or_insert(v);
    }
    if let Err(detail) = expand_disk(c, &mut disk, next_disk, uid, user.gid == 0) {
        let code = if detail.contains("Not authorized") {
            AUTHORIZATION
        } else {
            ACTION
        };
        return Ok(failure(c, code, method, &detail, -1));
    }
    if let Some(vm) = c.vms.get_mut(&id) {
        vm.template.push((
            "DISK".into(),
            TemplateValue::Vector(disk.into_iter().collect()),
        ));
        vm.template.sort_by(|a, b| a.0.cmp(&b.0));
    }
    acquire_images(c, id);
    hotplug(c, now, id, state);
    Ok(success(Value::Int(id)))
}

/// HOTPLUG for one step (RUNNING VMs; a POWEROFF VM changes at once).
fn hotplug(c: &mut ComputeState, now: i64, id: i64, state: i32) {
    if state == ACTIVE {
        if let Some(vm) = c.vms.get_mut(&id) {
            vm.lcm = HOTPLUG;
        }
        c.plan(id, now, &[Ev::Running]);
    }
    c.touch(id);
}

fn detach(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let id = int_param(params, 1)?;
    let disk_id = int_param(params, 2)?;
    if let Err(reply) = vm_or_error(c, user, method, id, "MANAGE") {
        return Ok(reply);
    }
    let Some((state, lcm)) = c.vms.get(&id).map(|vm| (vm.state, vm.lcm)) else {
        return Ok(c.get_error(method, id));
    };
    if !((state == ACTIVE && lcm == RUNNING) || state == POWEROFF) {
        let message = format!(
            "Error performing action \"disk-detach\": This action is not available for state {}",
            super::state_str(state, lcm)
        );
        return Ok(failure(c, ACTION, method, &message, -1));
    }
    let wanted = disk_id.to_string();
    let mut removed = None;
    if let Some(vm) = c.vms.get_mut(&id) {
        let at = vm.template.iter().position(|(k, v)| {
            k == "DISK"
                && matches!(v, TemplateValue::Vector(p) if p.iter().any(|(pk, pv)| pk == "DISK_ID" && *pv == wanted))
        });
        if let Some(at) = at {
            removed = Some(vm.template.remove(at));
        }
    }
    let Some((_, TemplateValue::Vector(pairs))) = removed else {
        return Ok(failure(c, ACTION, method, "VM disk does not exist", -1));
    };
    let image = pairs
        .iter()
        .find(|(k, _)| k == "IMAGE_ID")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    if let (Some(iid), Some(plain)) = (image, c.plain.as_mut()) {
        if let Some(i) = plain.images.get_mut(&iid) {
            i.vms.remove(&id);
        }
    }
    hotplug(c, now, id, state);
    Ok(success(Value::Int(id)))
}

fn recover(
    c: &mut ComputeState,
    now: i64,
    user: &User,
    method: &str,
    params: &[Value],
) -> Result<Value, Fault> {
    let id = int_param(params, 1)?;
    let op = int_param(params, 2)?;
    // 7.4's VirtualMachineAPI::recover checks the code first, then the VM, then the rights.
    if !(0..=5).contains(&op) {
        return Ok(failure(
            c,
            ACTION,
            method,
            "Wrong recovery operation code",
            -1,
        ));
    }
    let Some((state, lcm)) = c.vms.get(&id).map(|vm| (vm.state, vm.lcm)) else {
        return Ok(c.get_error(method, id));
    };
    if user.gid != 0 {
        let message = format!(
            "User [{}] : Not authorized to perform ADMIN VM [{id}].",
            user.id
        );
        return Ok(failure(c, AUTHORIZATION, method, &message, -1));
    }
    let wrong = |c: &ComputeState| {
        let what = if op == 2 {
            "a retry"
        } else {
            "a recover operation"
        };
        let message = format!(
            "Could not perform {what} on VM {id}, wrong state {}.",
            super::state_str(state, lcm)
        );
        failure(c, ACTION, method, &message, -1)
    };
    // failure / success / retry act on ACTIVE VMs only (DispatchManager::recover, ::retry);
    // on a RUNNING one they are accepted and do nothing (vm-recover-{0,1,2}-on-running.json).
    let transient = state == ACTIVE && lcm != RUNNING && lcm != super::UNKNOWN;
    match op {
        0..=2 if state != ACTIVE => return Ok(wrong(c)),
        0..=2 if !transient => {}
        // failure: the pending driver action failed (LifeCycleManager::recover): a deploy
        // fails to BOOT_FAILURE, a prolog or epilog to its failure state, a shutdown, save or
        // hot-plug leaves the VM RUNNING (vm-info-after-recover-failure.xml).
        0 => {
            c.plan(id, now, &[]);
            if let Some(vm) = c.vms.get_mut(&id) {
                vm.lcm = match lcm {
                    PROLOG | PROLOG_FAILURE => PROLOG_FAILURE,
                    super::EPILOG | EPILOG_FAILURE => EPILOG_FAILURE,
                    super::SHUTDOWN
                    | super::SHUTDOWN_POWEROFF
                    | super::SAVE_STOP
                    | super::SAVE_SUSPEND
                    | HOTPLUG => RUNNING,
                    _ => BOOT_FAILURE,
                };
            }
            c.touch(id);
        }
        1 | 2 => {
            c.plan(id, now, &[]);
            c.apply(id, now, Ev::Running);
        }
        // delete, delete-db: gone at once; a DONE VM is accepted as is (vm-recover-3-on-done.json).
        3 | 5 if state == DONE => {}
        3 | 5 => {
            c.plan(id, now, &[]);
            c.apply(id, now, Ev::Done);
        }
        // delete-recreate: back to PENDING, deployed again.
        _ => {
            if state == DONE {
                let message = "Cannot delete-recreate a VM already in DONE state";
                return Ok(failure(c, ACTION, method, message, -1));
            }
            if let Some(vm) = c.vms.get_mut(&id) {
                vm.state = PENDING;
                vm.lcm = LCM_INIT;
                super::close_history(vm, now / 1_000_000, 3);
            }
            c.deploy_plan(id, now, PROLOG, BOOT);
            c.touch(id);
        }
    }
    Ok(success(Value::Int(id)))
}

#[cfg(test)]
mod tests {
    use super::super::ComputeOptions;
    use super::*;

    const T0: f64 = 1_796_530_229.0;

    fn site() -> ComputeState {
        ComputeState::new(
            "7.4",
            ComputeOptions {
                boot_step: std::time::Duration::ZERO,
                users: vec!["alice".into()],
                plain: true,
                ..ComputeOptions::default()
            },
        )
        .unwrap()
    }

    fn capture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/opennebula-7.4.0/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        fn conv(v: &serde_json::Value) -> Value {
            match v {
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => Value::Int(n.as_i64().unwrap()),
                serde_json::Value::String(s) => Value::String(s.clone()),
                serde_json::Value::Array(a) => Value::Array(a.iter().map(conv).collect()),
                _ => Value::Nil,
            }
        }
        conv(&json)
    }

    fn call(c: &mut ComputeState, user: &str, method: &str, params: Vec<Value>) -> Value {
        let mut all = vec![Value::String("s".into())];
        all.extend(params);
        c.call(T0, user, method, &all).unwrap()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn refusals_equal_the_captures() {
        let mut c = site();
        let vm = call(
            &mut c,
            "oneadmin",
            "one.vm.allocate",
            vec![s("NAME=t CPU=1 MEMORY=64 DISK=[IMAGE_ID=0]")],
        );
        assert_eq!(vm, success(Value::Int(0)));
        for (action, file) in [
            ("shutdown-hard", "error-vm-action-old-name.json"),
            ("cancel", "more/err-action-oldname-cancel.json"),
            ("delete", "more/err-action-oldname-delete.json"),
            ("finalize", "more/err-action-oldname-finalize.json"),
            ("foo", "more/err-action-oldname-foo.json"),
            ("reset", "more/err-action-oldname-reset.json"),
            ("restart", "more/err-action-oldname-restart.json"),
            ("resubmit", "more/err-action-oldname-resubmit.json"),
            ("shutdown", "more/err-action-oldname-shutdown.json"),
        ] {
            let got = call(
                &mut c,
                "oneadmin",
                "one.vm.action",
                vec![s(action), Value::Int(0)],
            );
            assert_eq!(got, capture(file), "{action}");
        }
        let cases: Vec<(&str, Vec<Value>, &str)> = vec![
            (
                "one.vm.info",
                vec![Value::Int(9999)],
                "error-vm-info-nonexistent.json",
            ),
            (
                "one.vm.info",
                vec![Value::Int(999_999)],
                "more/err-noexist-vm-info.json",
            ),
            (
                "one.image.info",
                vec![Value::Int(999_999)],
                "more/err-noexist-image-info.json",
            ),
            (
                "one.image.delete",
                vec![Value::Int(999_999)],
                "more/err-noexist-image-delete.json",
            ),
            (
                "one.template.info",
                vec![Value::Int(999_999)],
                "more/err-noexist-template-info.json",
            ),
            (
                "one.template.instantiate",
                vec![Value::Int(999_999), s(""), Value::Bool(false), s("")],
                "more/err-noexist-template-instantiate.json",
            ),
            (
                "one.vn.info",
                vec![Value::Int(999_999)],
                "more/err-noexist-vnet-info.json",
            ),
            (
                "one.vm.attach",
                vec![Value::Int(999_999), s("DISK=[IMAGE_ID=1]")],
                "more/err-noexist-vm-attach.json",
            ),
            (
                "one.vm.detach",
                vec![Value::Int(999_999), Value::Int(1)],
                "more/err-detach-nonexistent-vm.json",
            ),
            (
                "one.vm.detach",
                vec![Value::Int(0), Value::Int(7)],
                "more/err-detach-wrong-disk-id.json",
            ),
            (
                "one.vm.recover",
                vec![Value::Int(999_999), Value::Int(3)],
                "more/err-recover-nonexistent.json",
            ),
            (
                "one.vm.recover",
                vec![Value::Int(0), Value::Int(9)],
                "more/err-recover-op-9.json",
            ),
            (
                "one.vmpool.info",
                vec![
                    Value::Int(-2),
                    Value::Int(-1),
                    Value::Int(-1),
                    Value::Int(99),
                ],
                "more/err-vmpool-info-bad-state.json",
            ),
            (
                "one.image.allocate",
                vec![s("NAME=x TYPE=DATABLOCK SIZE=1"), Value::Int(999)],
                "more/err-image-allocate-no-ds.json",
            ),
            (
                "one.image.allocate",
                vec![s("NAME=x TYPE=DATABLOCK SIZE=1"), Value::Int(0)],
                "more/err-image-allocate-system-ds.json",
            ),
        ];
        for (method, params, file) in cases {
            assert_eq!(
                call(&mut c, "oneadmin", method, params),
                capture(file),
                "{file}"
            );
        }
    }

    #[test]
    fn persistent_images_are_locked_while_used_and_pools_descend() {
        let mut c = site();
        let image = call(
            &mut c,
            "alice",
            "one.image.allocate",
            vec![
                s("NAME=pv TYPE=DATABLOCK SIZE=8 PERSISTENT=YES"),
                Value::Int(1),
            ],
        );
        assert_eq!(image, success(Value::Int(2)));
        let template = "NAME=a CPU=1 MEMORY=64 DISK=[IMAGE_ID=0]";
        for _ in 0..2 {
            call(&mut c, "alice", "one.vm.allocate", vec![s(template)]);
        }
        let attach = |c: &mut ComputeState, vm| {
            call(
                c,
                "alice",
                "one.vm.attach",
                vec![Value::Int(vm), s("DISK=[IMAGE_ID=2]")],
            )
        };
        assert_eq!(attach(&mut c, 0), success(Value::Int(0)));
        let refused = attach(&mut c, 1);
        assert_eq!(
            refused.as_array().unwrap()[1],
            s("[one.vm.attach] Cannot acquire image 2, it is persistent and already in use")
        );
        let delete = call(&mut c, "alice", "one.image.delete", vec![Value::Int(2)]);
        assert_eq!(
            delete.as_array().unwrap()[1],
            s("[one.image.delete] Cannot delete image. There are 1 VMs using it.")
        );
        // Terminating the VM frees the image.
        call(
            &mut c,
            "alice",
            "one.vm.action",
            vec![s("terminate-hard"), Value::Int(0)],
        );
        c.advance(T0 + 1.0);
        assert_eq!(
            call(&mut c, "alice", "one.image.delete", vec![Value::Int(2)]),
            success(Value::Int(2))
        );
        let pool = call(
            &mut c,
            "alice",
            "one.imagepool.info",
            vec![Value::Int(-2), Value::Int(-1), Value::Int(-1)],
        );
        let doc = pool.as_array().unwrap()[1].as_str().unwrap().to_owned();
        assert!(doc.find("<ID>1</ID>").unwrap() < doc.find("<ID>0</ID>").unwrap());
        let vms = call(
            &mut c,
            "alice",
            "one.vmpool.info",
            vec![
                Value::Int(-2),
                Value::Int(-1),
                Value::Int(-1),
                Value::Int(-2),
            ],
        );
        let doc = vms.as_array().unwrap()[1].as_str().unwrap().to_owned();
        assert!(doc.find("<ID>1</ID>").unwrap() < doc.find("<ID>0</ID>").unwrap());
    }
}
