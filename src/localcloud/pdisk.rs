//! The local cloud's pdisk service (spec §4.4): volumes in memory, served under
//! `/pdisk/pswd/disks…` by the server, which authenticates the caller and passes the part of the
//! path that starts at `/disks`.
//!
//! Replies reproduce what the real service (StratusLab/storage at `2759a98`, Restlet +
//! FreeMarker) renders: the templates' key order, indentation, CRLF line ends of `disk.ftl` and
//! `disks.ftl`, every value a string, numbers grouped by thousands (`"1,500,000,000"`), and the
//! server's error texts and checks in its order. Deliberate differences, each documented where it
//! happens:
//! - every interpolated value is JSON-escaped (the real templates escape only `tag` and error
//!   messages, so an owner or node containing `"` produced invalid JSON there);
//! - successful replies are always JSON (the real service picks HTML for browsers); errors are
//!   JSON when the caller's first usable `Accept` entry is `application/json`, else
//!   `ERROR (<code>): <text>` as text (where the real service would send HTML);
//! - there is no hypervisor: a hot attach checks instead that the VM exists at this site, runs and
//!   runs on the given node, and fails like a failed hot-plug command (500) otherwise;
//! - routes that need disk contents or hypervisors (upload, download, copy-on-write/rebase, `turl`,
//!   `instances`, reading one mount) answer 501.

use std::collections::HashMap;

use super::{Reply, VmView};
use crate::pdisk::Visibility;

/// Disk types the service knows (the Java enum `Disk.DiskType`).
pub const DISK_TYPES: [&str; 6] = [
    "MACHINE_IMAGE_ORIGIN",
    "MACHINE_IMAGE_LIVE",
    "DATA_IMAGE_ORIGIN",
    "DATA_IMAGE_LIVE",
    "DATA_IMAGE_RAW_READONLY",
    "DATA_IMAGE_RAW_READ_WRITE",
];
const DEFAULT_TYPE: &str = "DATA_IMAGE_RAW_READ_WRITE";
/// Device name of a mount registered with `register_only=true` (attached at boot).
pub const STATIC_DEVICE: &str = "static";
/// Creation limits of the service, in GiB.
const SIZE_MIN: i64 = 1;
const SIZE_MAX: i64 = 1024;

const JSON_TYPE: &str = "application/json";
const TEXT_TYPE: &str = "text/plain; charset=UTF-8";
/// Restlet's descriptions of statuses raised without a message.
const NOT_FOUND: &str = "The server has not found anything matching the request URI";
const METHOD_NOT_ALLOWED: &str =
    "The method specified in the request is not allowed for the resource identified by the request URI";
const INTERNAL: &str =
    "The server encountered an unexpected condition which prevented it from fulfilling the request";

/// One mount of a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountState {
    /// As the form gave it (the service keeps VM ids as text).
    pub vm_id: String,
    /// `vda`…`vdz`, or [`STATIC_DEVICE`].
    pub device: String,
    /// Hypervisor host named by the attach request.
    pub node: String,
}

/// One disk, as the service stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskState {
    /// Random lower-case UUID.
    pub uuid: String,
    /// Free text, `""` when none.
    pub tag: String,
    /// The creator (or the form's `owner`).
    pub owner: String,
    /// PRIVATE by default.
    pub visibility: Visibility,
    /// One of [`DISK_TYPES`].
    pub disk_type: String,
    /// Marketplace id, `snapshot:<uuid>`, or `""`.
    pub identifier: String,
    /// As given: GiB when ≤ 1000, bytes otherwise (`-1` until set, as in the service).
    pub size: i64,
    /// Quarantine start, `""` when not quarantined.
    pub quarantine: String,
    /// Creation sequence number (larger = newer).
    pub created: u64,
    /// Attach order.
    pub mounts: Vec<MountState>,
}

/// All disks of one site's pdisk service.
#[derive(Debug, Clone)]
pub struct PdiskStore {
    superuser: String,
    /// Creation order (oldest first).
    disks: Vec<DiskState>,
    index: HashMap<String, usize>,
    next_created: u64,
}

/// An error reply before rendering.
#[derive(Debug)]
struct Failure {
    status: u16,
    message: String,
}

impl Failure {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// `json/error.ftl` or `text/error.ftl`.
    fn render(&self, json: bool) -> Reply {
        if json {
            let body = format!(
                "{{ \n  \"message\" : \"{}\", \n  \"code\" : {} \n}}\n",
                escape(&self.message),
                self.status
            );
            Reply::new(self.status, JSON_TYPE, body)
        } else {
            let body = format!("ERROR ({}): {}\n", self.status, self.message);
            Reply::new(self.status, TEXT_TYPE, body)
        }
    }
}

type Outcome = Result<Reply, Failure>;

fn json_reply(status: u16, body: String) -> Reply {
    Reply::new(status, JSON_TYPE, body)
}

fn not_allowed() -> Failure {
    Failure::new(405, METHOD_NOT_ALLOWED)
}

fn not_emulated(what: &str) -> Failure {
    Failure::new(501, format!("{what} is not emulated by the local cloud"))
}

/// A form body; like Restlet's `getFirstValue`, the first value of a key wins.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl PdiskStore {
    /// An empty store; `superuser` (the service's `disk.store.cloud.service.user`, `pdisk` in the
    /// reference configuration) sees and edits every disk.
    pub fn new(superuser: &str) -> Self {
        PdiskStore {
            superuser: superuser.to_owned(),
            disks: Vec::new(),
            index: HashMap::new(),
            next_created: 0,
        }
    }

    /// Adds `n` private 1–100 GiB data disks owned by `owner`, tagged `seed-<i>`.
    pub fn seed(&mut self, n: usize, owner: &str) {
        self.disks.reserve(n);
        self.index.reserve(n);
        for i in 0..n {
            let mut disk = self.new_disk(owner);
            disk.tag = format!("seed-{i}");
            disk.size = (i % 100) as i64 + 1;
            self.insert(disk);
        }
    }

    /// Removes every mount of VM `vm_id` (the VM ended).
    pub fn release_vm(&mut self, vm_id: i64) {
        let id = vm_id.to_string();
        for disk in &mut self.disks {
            disk.mounts.retain(|m| m.vm_id != id);
        }
    }

    /// Every disk, oldest first.
    pub fn disks(&self) -> Vec<DiskState> {
        self.disks.clone()
    }

    /// Answers one request. `path` starts at `/disks` (the part after `/pdisk/pswd`); `user` is
    /// the authenticated caller; `vm_lookup` finds a VM of this site for hot attach.
    #[allow(clippy::too_many_arguments)]
    pub fn handle(
        &mut self,
        user: &str,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        accept: Option<&str>,
        vm_lookup: &dyn Fn(i64) -> Option<VmView>,
    ) -> Reply {
        // The only query parameters the service reads are `edit` (HTML forms) and
        // `metadata_only` (skip the hypervisor on detach); neither changes an emulated reply.
        let _ = query;
        let head = method == "HEAD";
        let method = if head { "GET" } else { method };
        let mut reply = self
            .route(user, method, path, body, vm_lookup)
            .unwrap_or_else(|failure| failure.render(wants_json(accept)));
        if head {
            reply.body.clear();
        }
        reply
    }

    fn route(
        &mut self,
        user: &str,
        method: &str,
        path: &str,
        body: &[u8],
        vm_lookup: &dyn Fn(i64) -> Option<VmView>,
    ) -> Outcome {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let segments: Vec<&str> = trimmed.split('/').collect();
        match segments.as_slice() {
            ["", "disks"] => match method {
                "GET" => Ok(self.list(user)),
                "POST" => self.create(user, body),
                _ => Err(not_allowed()),
            },
            ["", "disks", uuid] => self.disk_resource(user, method, uuid, body),
            ["", "disks", uuid, "mounts"] => {
                self.mounts_resource(user, method, uuid, body, vm_lookup)
            }
            ["", "disks", uuid, "mounts", mount_id] => {
                self.mount_resource(user, method, uuid, mount_id)
            }
            ["", "disks", _, "turl"] => Err(not_emulated("the transport URL")),
            ["", "instances"] | ["", "instances", _] => Err(not_emulated("the instances view")),
            _ => Err(Failure::new(404, NOT_FOUND)),
        }
    }

    fn new_disk(&mut self, owner: &str) -> DiskState {
        self.next_created += 1;
        DiskState {
            uuid: uuid::Uuid::new_v4().to_string(),
            tag: String::new(),
            owner: owner.to_owned(),
            visibility: Visibility::Private,
            disk_type: DEFAULT_TYPE.to_owned(),
            identifier: String::new(),
            size: -1,
            quarantine: String::new(),
            created: self.next_created,
            mounts: Vec::new(),
        }
    }

    fn insert(&mut self, disk: DiskState) {
        self.index.insert(disk.uuid.clone(), self.disks.len());
        self.disks.push(disk);
    }

    fn remove(&mut self, at: usize) {
        let disk = self.disks.remove(at);
        self.index.remove(&disk.uuid);
        for (i, d) in self.disks.iter().enumerate().skip(at) {
            self.index.insert(d.uuid.clone(), i);
        }
    }

    fn is_superuser(&self, user: &str) -> bool {
        user == self.superuser
    }

    fn can_view(&self, user: &str, disk: &DiskState) -> bool {
        user == disk.owner || self.is_superuser(user) || disk.visibility == Visibility::Public
    }

    fn can_edit(&self, user: &str, disk: &DiskState) -> bool {
        user == disk.owner || self.is_superuser(user)
    }

    /// Mounts, or for a `MACHINE_IMAGE_ORIGIN` the number of its copy-on-write snapshots.
    fn count(&self, disk: &DiskState) -> usize {
        if disk.disk_type == "MACHINE_IMAGE_ORIGIN" {
            let snapshot = format!("snapshot:{}", disk.uuid);
            self.disks
                .iter()
                .filter(|d| d.identifier == snapshot)
                .count()
        } else {
            disk.mounts.len()
        }
    }

    /// `GET /disks/`: the caller's disks (all for the super-user), newest first.
    fn list(&self, user: &str) -> Reply {
        let superuser = self.is_superuser(user);
        let visible: Vec<&DiskState> = self
            .disks
            .iter()
            .rev()
            .filter(|d| superuser || d.owner == user)
            .collect();
        let mut out = String::from("[\r\n");
        for (i, disk) in visible.iter().enumerate() {
            render_list_item(&mut out, disk, self.count(disk), i + 1 < visible.len());
        }
        out.push_str("]\r\n");
        json_reply(200, out)
    }

    /// `POST /disks/` with a form.
    fn create(&mut self, user: &str, body: &[u8]) -> Outcome {
        let form = Form::parse(body);
        let mut disk = self.new_disk(user);
        apply_form(&mut disk, &form)?;
        if !disk.identifier.is_empty() && self.disks.iter().any(|d| d.identifier == disk.identifier)
        {
            return Err(Failure::new(403, "Disk already registered"));
        }
        if !(SIZE_MIN..=SIZE_MAX).contains(&disk.size) {
            return Err(Failure::new(
                400,
                format!("Size must be an integer between {SIZE_MIN} and {SIZE_MAX}"),
            ));
        }
        let reply = json_reply(201, render_key_value("uuid", &disk.uuid));
        self.insert(disk);
        Ok(reply)
    }

    /// `/disks/<uuid>`: the view check every method goes through first, then the method.
    fn disk_resource(&mut self, user: &str, method: &str, uuid: &str, body: &[u8]) -> Outcome {
        let at = *self
            .index
            .get(uuid)
            .ok_or_else(|| Failure::new(404, format!("disk ({uuid}) does not exist")))?;
        if !self.can_view(user, &self.disks[at]) {
            return Err(Failure::new(
                403,
                format!("insufficient access rights to view disk ({uuid})"),
            ));
        }
        match method {
            "GET" => {
                let disk = &self.disks[at];
                Ok(json_reply(200, render_disk(disk, self.count(disk))))
            }
            "PUT" => self.update(at, body),
            "DELETE" => self.delete(user, at),
            "POST" => Err(not_emulated("copy-on-write and rebase")),
            _ => Err(not_allowed()),
        }
    }

    /// `PUT /disks/<uuid>`: like the service, it ignores its own edit-rights check, so anyone
    /// who may view the disk may update it; the size is not range-checked.
    fn update(&mut self, at: usize, body: &[u8]) -> Outcome {
        if body.is_empty() {
            return Err(Failure::new(400, "post with null entity"));
        }
        let mut updated = self.disks[at].clone();
        apply_form(&mut updated, &Form::parse(body))?;
        self.disks[at] = updated;
        Ok(Reply::new(204, TEXT_TYPE, Vec::new()))
    }

    /// `DELETE /disks/<uuid>/`.
    fn delete(&mut self, user: &str, at: usize) -> Outcome {
        let disk = &self.disks[at];
        if !self.can_edit(user, disk) {
            return Err(Failure::new(
                403,
                format!("insufficient rights to delete disk ({})", disk.uuid),
            ));
        }
        if !disk.mounts.is_empty() {
            return Err(Failure::new(
                409,
                format!("disk ({}) is in use and can't be deleted", disk.uuid),
            ));
        }
        let reply = json_reply(200, render_key_value("uuid", &disk.uuid));
        self.remove(at);
        Ok(reply)
    }

    /// `/disks/<uuid>/mounts`: list (no rights check, as in the service) or hot attach.
    fn mounts_resource(
        &mut self,
        user: &str,
        method: &str,
        uuid: &str,
        body: &[u8],
        vm_lookup: &dyn Fn(i64) -> Option<VmView>,
    ) -> Outcome {
        let at = *self
            .index
            .get(uuid)
            .ok_or_else(|| Failure::new(404, format!("Unknown disk: {uuid}")))?;
        match method {
            "GET" => Ok(json_reply(200, render_mounts(&self.disks[at].mounts))),
            "POST" => self.attach(user, at, body, vm_lookup),
            _ => Err(not_allowed()),
        }
    }

    /// The first free device of a VM, scanning `vdz` down to `vda`.
    fn next_device(&self, vm_id: &str) -> Result<String, Failure> {
        let used: Vec<&str> = self
            .disks
            .iter()
            .flat_map(|d| d.mounts.iter())
            .filter(|m| m.vm_id == vm_id)
            .map(|m| m.device.as_str())
            .collect();
        (b'a'..=b'z')
            .rev()
            .map(|letter| format!("vd{}", letter as char))
            .find(|device| !used.contains(&device.as_str()))
            .ok_or_else(|| Failure::new(409, "no free devices available"))
    }

    /// `POST /disks/<uuid>/mounts/` form `node`, `vm_id`, optional `register_only=true`; the
    /// checks run in the service's order (device before rights before duplicate).
    fn attach(
        &mut self,
        user: &str,
        at: usize,
        body: &[u8],
        vm_lookup: &dyn Fn(i64) -> Option<VmView>,
    ) -> Outcome {
        let form = Form::parse(body);
        let node = form
            .get("node")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Failure::new(400, "missing node attribute"))?;
        let vm_id = form
            .get("vm_id")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Failure::new(400, "missing vm_id attribute"))?;
        let register_only = form
            .get("register_only")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let target = if register_only {
            STATIC_DEVICE.to_owned()
        } else {
            self.next_device(vm_id)?
        };
        let disk = &self.disks[at];
        if !self.can_view(user, disk) {
            return Err(Failure::new(403, "Not enough rights to attach disk"));
        }
        if disk.mounts.iter().any(|m| m.vm_id == vm_id) {
            return Err(Failure::new(
                403,
                format!("Mount already exists for: {vm_id} and {}", disk.uuid),
            ));
        }
        if !register_only {
            hot_plug_check(node, vm_id, vm_lookup)?;
        }
        let body = render_action(node, vm_id, &target, &disk.uuid);
        self.disks[at].mounts.push(MountState {
            vm_id: vm_id.to_owned(),
            device: target,
            node: node.to_owned(),
        });
        Ok(json_reply(200, body))
    }

    /// The disk index and mount position of mount id `<uuid>_<vmid>`.
    fn find_mount(&self, mount_id: &str) -> Option<(usize, usize)> {
        let (uuid, vm_id) = mount_id.split_once('_')?;
        let at = *self.index.get(uuid)?;
        let position = self.disks[at]
            .mounts
            .iter()
            .position(|m| m.vm_id == vm_id)?;
        Some((at, position))
    }

    /// `/disks/<uuid>/mounts/<uuid>_<vmid>`: an unknown mount id is a plain 404 (Restlet's
    /// "non-existing resource"), before any other check.
    fn mount_resource(&mut self, user: &str, method: &str, uuid: &str, mount_id: &str) -> Outcome {
        let (mount_disk, position) = self
            .find_mount(mount_id)
            .ok_or_else(|| Failure::new(404, NOT_FOUND))?;
        match method {
            "DELETE" => {}
            "GET" => return Err(not_emulated("reading one mount")),
            _ => return Err(not_allowed()),
        }
        let at = *self
            .index
            .get(uuid)
            .ok_or_else(|| Failure::new(404, format!("unknown disk: {uuid}")))?;
        if !self.can_view(user, &self.disks[at]) {
            return Err(Failure::new(403, "insufficient rights to detach disk"));
        }
        // The service reads the target from the disk named in the path; a mount of another disk
        // reads as "static" there.
        let target = if at == mount_disk {
            self.disks[at].mounts[position].device.clone()
        } else {
            STATIC_DEVICE.to_owned()
        };
        let mount = self.disks[mount_disk].mounts.remove(position);
        Ok(json_reply(
            200,
            render_mount(uuid, mount_id, &mount.vm_id, &target),
        ))
    }
}

/// What hot-plugging would need: the VM exists at this site, runs, and runs on `node`. A
/// failure answers like the service's failed hot-plug command (500).
fn hot_plug_check(
    node: &str,
    vm_id: &str,
    vm_lookup: &dyn Fn(i64) -> Option<VmView>,
) -> Result<(), Failure> {
    let fail = |why: String| {
        Failure::new(
            500,
            format!("Unable to attach persistent disk: VM {vm_id} {why}"),
        )
    };
    let vm = vm_id
        .parse::<i64>()
        .ok()
        .and_then(vm_lookup)
        .ok_or_else(|| fail("does not exist".to_owned()))?;
    if !vm.running {
        return Err(fail("is not running".to_owned()));
    }
    if vm.host.as_deref() != Some(node) {
        return Err(fail(format!("does not run on node {node}")));
    }
    Ok(())
}

/// The service's form handling (`DiskBaseResource.processWebForm`), in its order.
fn apply_form(disk: &mut DiskState, form: &Form) -> Result<(), Failure> {
    if let Some(size) = form.get("size") {
        // Java's Long.parseLong and Rust's i64 parsing accept the same texts.
        disk.size = size.parse::<i64>().map_err(|_| {
            Failure::new(
                400,
                format!("Error parsing size: For input string: \"{size}\""),
            )
        })?;
    }
    if let Some(value) = form.get("visibility") {
        disk.visibility = Visibility::parse(value).ok_or_else(|| {
            Failure::new(
                400,
                format!(
                    "Invalid value for form element visibility: No enum constant \
                     eu.stratuslab.storage.disk.resources.BaseResource.DiskVisibility.{}",
                    value.to_uppercase()
                ),
            )
        })?;
    }
    for (key, field) in [
        ("tag", &mut disk.tag),
        ("owner", &mut disk.owner),
        ("quarantine", &mut disk.quarantine),
        ("identifier", &mut disk.identifier),
    ] {
        if let Some(value) = form.get(key) {
            value.clone_into(field);
        }
    }
    if let Some(value) = form.get("type") {
        // The service does not catch the enum error: an uncaught exception, hence a bare 500.
        if !DISK_TYPES.contains(&value) {
            return Err(Failure::new(500, INTERNAL));
        }
        value.clone_into(&mut disk.disk_type);
    }
    Ok(())
}

/// Whether an error is rendered as JSON: the first `Accept` entry (by quality) the service knows
/// decides; `application/json` → JSON, HTML/text/wildcards → text (HTML in the real service).
fn wants_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut ranges: Vec<(f32, String)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q=")?.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!media.is_empty() && quality > 0.0).then_some((quality, media))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, media) in ranges {
        match media.as_str() {
            "application/json" => return true,
            "text/html"
            | "application/xhtml+xml"
            | "text/plain"
            | "text/*"
            | "application/*"
            | "*/*" => return false,
            _ => {}
        }
    }
    false
}

/// FreeMarker's `?j_string`: backslash escapes for `"`, `\` and control characters.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// FreeMarker's default number format (en locale): thousands grouped with commas.
fn grouped(number: i64) -> String {
    let digits = number.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if number < 0 {
        out.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn grouped_count(count: usize) -> String {
    grouped(i64::try_from(count).unwrap_or(i64::MAX))
}

/// `json/disk.ftl` (CRLF). FreeMarker drops lines holding only tags; the text before an
/// `<#else>` on a line with text stays, so a non-empty identifier leaves four spaces that indent
/// the next line further.
fn render_disk(disk: &DiskState, count: usize) -> String {
    let mut out = String::from("{\r\n");
    out.push_str(&format!("    \"uuid\": \"{}\",\r\n", escape(&disk.uuid)));
    out.push_str(&format!("    \"tag\": \"{}\",\r\n", escape(&disk.tag)));
    out.push_str(&format!("    \"count\": \"{}\",\r\n", grouped_count(count)));
    out.push_str(&format!("    \"owner\": \"{}\",\r\n", escape(&disk.owner)));
    if disk.identifier.is_empty() {
        out.push_str("    \"identifier\": \"\",\r\n");
    } else {
        out.push_str(&format!(
            "    \"identifier\": \"{}\",\r\n    ",
            escape(&disk.identifier)
        ));
    }
    if !disk.quarantine.is_empty() {
        out.push_str(&format!(
            "    \"quarantine\": \"{}\",\r\n",
            escape(&disk.quarantine)
        ));
    }
    out.push_str(&format!("    \"size\": \"{}\",\r\n", grouped(disk.size)));
    out.push_str(&format!(
        "    \"type\": \"{}\",\r\n",
        escape(&disk.disk_type)
    ));
    out.push_str(&format!(
        "    \"visibility\": \"{}\"\r\n",
        disk.visibility.wire_name()
    ));
    out.push_str("}\r\n");
    out
}

/// One item of `json/disks.ftl` (CRLF); a non-empty tag or identifier leaves four extra spaces
/// before the next line (see [`render_disk`]).
fn render_list_item(out: &mut String, disk: &DiskState, count: usize, more: bool) {
    out.push_str("  {\r\n");
    out.push_str(&format!("    \"uuid\": \"{}\",\r\n", escape(&disk.uuid)));
    if disk.tag.is_empty() {
        out.push_str("    \"tag\": \"\",\r\n");
    } else {
        out.push_str(&format!("    \"tag\": \"{}\",\r\n    ", escape(&disk.tag)));
    }
    if !disk.quarantine.is_empty() {
        out.push_str(&format!(
            "    \"quarantine\": \"{}\",\r\n",
            escape(&disk.quarantine)
        ));
    }
    out.push_str(&format!("    \"count\": \"{}\",\r\n", grouped_count(count)));
    out.push_str(&format!("    \"owner\": \"{}\",\r\n", escape(&disk.owner)));
    if disk.identifier.is_empty() {
        out.push_str("    \"identifier\": \"\",\r\n");
    } else {
        out.push_str(&format!(
            "    \"identifier\": \"{}\",\r\n    ",
            escape(&disk.identifier)
        ));
    }
    out.push_str(&format!("    \"size\": \"{}\"\r\n", grouped(disk.size)));
    out.push_str(if more { "  },\r\n" } else { "  }\r\n" });
}

/// `json/keyvalue.ftl`.
fn render_key_value(key: &str, value: &str) -> String {
    format!("{{ \n  \"{key}\" : \"{}\"\n}}\n", escape(value))
}

/// `json/action.ftl` (hot attach).
fn render_action(node: &str, vm_id: &str, target: &str, uuid: &str) -> String {
    format!(
        "{{\n  \"node\" : \"{}\",\n  \"vm_id\" : \"{}\",\n  \"target\" : \"{}\",\n  \"uuid\" : [\"{}\"]\n}}\n",
        escape(node),
        escape(vm_id),
        escape(target),
        escape(uuid)
    )
}

/// `json/mount.ftl` (hot detach).
fn render_mount(disk_id: &str, mount_id: &str, vm_id: &str, target: &str) -> String {
    format!(
        "{{\n  \"diskId\" : \"{}\", \n  \"mountId\" : \"{}\", \n  \"vmId\" : \"{}\", \n  \"target\" : \"{}\"\n}}\n",
        escape(disk_id),
        escape(mount_id),
        escape(vm_id),
        escape(target)
    )
}

/// `json/mounts.ftl`, ordered by device like the service's query.
fn render_mounts(mounts: &[MountState]) -> String {
    let mut sorted: Vec<&MountState> = mounts.iter().collect();
    sorted.sort_by(|a, b| a.device.cmp(&b.device));
    let mut out = String::from("[\n");
    for (i, mount) in sorted.iter().enumerate() {
        out.push_str(&format!(
            "  {{\n    \"vmId\" : \"{}\",\n    \"device\" : \"{}\"\n  }}",
            escape(&mount.vm_id),
            escape(&mount.device)
        ));
        out.push_str(if i + 1 < sorted.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID_A: &str = "{{uuid}}";
    const UUID_B: &str = "{{uuid2}}";
    const ACCEPT_JSON: Option<&str> = Some("application/json");

    fn fixture_path(rel: &str) -> String {
        format!("{}/tests/fixtures/pdisk/{rel}", env!("CARGO_MANIFEST_DIR"))
    }

    /// A golden reply, with the uuid placeholders filled in.
    fn golden(name: &str, a: &str, b: &str) -> String {
        let text = std::fs::read_to_string(fixture_path(&format!("golden/{name}"))).unwrap();
        text.replace(UUID_B, b).replace(UUID_A, a)
    }

    /// VMs of the test site: 42 and 7 running, 8 stopped, 9 not yet placed.
    fn vms(id: i64) -> Option<VmView> {
        let vm = |host: Option<&str>, running| VmView {
            id,
            owner: "joe".into(),
            host: host.map(str::to_owned),
            running,
        };
        match id {
            42 => Some(vm(Some("node-1.example.org"), true)),
            7 => Some(vm(Some("node-2.example.org"), true)),
            8 => Some(vm(Some("node-1.example.org"), false)),
            9 => Some(vm(None, false)),
            _ => None,
        }
    }

    fn call(
        store: &mut PdiskStore,
        user: &str,
        method: &str,
        path: &str,
        body: &str,
        accept: Option<&str>,
    ) -> Reply {
        store.handle(user, method, path, "", body.as_bytes(), accept, &vms)
    }

    fn json(store: &mut PdiskStore, user: &str, method: &str, path: &str, body: &str) -> Reply {
        call(store, user, method, path, body, ACCEPT_JSON)
    }

    fn text(reply: &Reply) -> &str {
        std::str::from_utf8(&reply.body).unwrap()
    }

    /// `json/error.ftl` with a message that needs no escaping.
    fn error_json(code: u16, message: &str) -> String {
        format!("{{ \n  \"message\" : \"{message}\", \n  \"code\" : {code} \n}}\n")
    }

    fn assert_error(reply: &Reply, code: u16, message: &str) {
        assert_eq!(
            (reply.status, text(reply)),
            (code, error_json(code, message).as_str())
        );
        assert_eq!(reply.content_type, "application/json");
    }

    fn create(store: &mut PdiskStore, user: &str, form: &str) -> String {
        let reply = json(store, user, "POST", "/disks/", form);
        assert_eq!(reply.status, 201, "{}", text(&reply));
        let uuid = text(&reply)
            .split('"')
            .nth(3)
            .expect("uuid in the reply")
            .to_owned();
        assert_eq!(text(&reply), golden("uuid-keyvalue.json", &uuid, ""));
        uuid
    }

    fn attach(store: &mut PdiskStore, user: &str, uuid: &str, node: &str, vm: i64) -> Reply {
        let form = format!("node={node}&vm_id={vm}");
        json(
            store,
            user,
            "POST",
            &format!("/disks/{uuid}/mounts/"),
            &form,
        )
    }

    /// The scenario behind the golden files: joe's plain disk A and public disk B (mounted on
    /// VMs 7 and 42), ann's disk C (mounted on VM 42 first).
    fn scenario() -> (PdiskStore, String, String) {
        let mut store = PdiskStore::new("pdisk");
        let a = create(&mut store, "joe", "size=10&tag=data&visibility=private");
        let b = create(
            &mut store,
            "joe",
            "size=5&tag=my+%22big%22+disk&visibility=public&identifier=JcqGhHxmTRAEpHMmRF-xhSTM3TO",
        );
        let update = json(
            &mut store,
            "joe",
            "PUT",
            &format!("/disks/{b}"),
            "size=1500000000&quarantine=2014-03-01+10%3A00%3A00.000001&type=MACHINE_IMAGE_LIVE",
        );
        assert_eq!((update.status, update.body.len()), (204, 0));
        let c = create(&mut store, "ann", "size=1");
        assert_eq!(
            attach(&mut store, "ann", &c, "node-1.example.org", 42).status,
            200
        );
        assert_eq!(
            attach(&mut store, "joe", &b, "node-2.example.org", 7).status,
            200
        );
        (store, a, b)
    }

    #[test]
    fn golden_disk_list_and_describe() {
        let (mut store, a, b) = scenario();
        let reply = attach(&mut store, "joe", &b, "node-1.example.org", 42);
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("attach-200.json", &a, &b).as_str())
        );
        assert_eq!(reply.content_type, "application/json");

        let reply = json(&mut store, "joe", "GET", &format!("/disks/{a}/"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("disk-plain.json", &a, &b).as_str())
        );
        let reply = json(&mut store, "joe", "GET", &format!("/disks/{b}"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("disk-full.json", &a, &b).as_str())
        );

        let reply = json(&mut store, "joe", "GET", "/disks/", "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("disks-list.json", &a, &b).as_str())
        );
        let reply = json(&mut store, "bob", "GET", "/disks", "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("disks-empty.json", &a, &b).as_str())
        );
        // the super-user sees all three, newest (ann's) first
        let reply = json(&mut store, "pdisk", "GET", "/disks/", "");
        let listed: Vec<&str> = text(&reply)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"owner\": \""))
            .collect();
        assert_eq!(listed, ["ann\",", "joe\",", "joe\","]);
    }

    #[test]
    fn golden_mounts_detach_and_delete_in_use() {
        let (mut store, a, b) = scenario();
        assert_eq!(
            attach(&mut store, "joe", &b, "node-1.example.org", 42).status,
            200
        );
        let reply = json(&mut store, "joe", "GET", &format!("/disks/{b}/mounts"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("mounts.json", &a, &b).as_str())
        );
        let reply = json(&mut store, "joe", "GET", &format!("/disks/{a}/mounts/"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("mounts-empty.json", &a, &b).as_str())
        );

        let reply = json(&mut store, "joe", "DELETE", &format!("/disks/{b}/"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (409, golden("error-409.json", &a, &b).as_str())
        );

        let reply = json(
            &mut store,
            "joe",
            "DELETE",
            &format!("/disks/{b}/mounts/{b}_42"),
            "",
        );
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("detach-200.json", &a, &b).as_str())
        );
        let reply = json(
            &mut store,
            "joe",
            "DELETE",
            &format!("/disks/{b}/mounts/{b}_7/"),
            "",
        );
        assert_eq!(reply.status, 200);
        assert!(text(&reply).ends_with("\"target\" : \"vdz\"\n}\n"));

        let reply = json(&mut store, "joe", "DELETE", &format!("/disks/{b}"), "");
        assert_eq!(
            (reply.status, text(&reply)),
            (200, golden("uuid-keyvalue.json", &b, "").as_str())
        );
        assert_error(
            &json(&mut store, "joe", "GET", &format!("/disks/{b}/"), ""),
            404,
            &format!("disk ({b}) does not exist"),
        );
        assert_eq!(store.disks().len(), 2);
    }

    #[test]
    fn golden_errors_json_and_text() {
        let mut store = PdiskStore::new("pdisk");
        let reply = json(&mut store, "joe", "POST", "/disks/", "size=ten&tag=x");
        assert_eq!(
            (reply.status, text(&reply)),
            (400, golden("error-400-size.json", "", "").as_str())
        );
        let expected = golden("error-404.txt", "", "");
        for accept in [
            None,
            Some("text/html"),
            Some("*/*"),
            Some("application/json;q=0.5, text/plain"),
            Some("application/json;q=0"),
        ] {
            let reply = call(&mut store, "joe", "GET", "/disks/no-such-disk", "", accept);
            assert_eq!(
                (reply.status, text(&reply)),
                (404, expected.as_str()),
                "{accept:?}"
            );
            assert_eq!(reply.content_type, "text/plain; charset=UTF-8");
        }
        for accept in [
            "application/json",
            "application/xml, application/json",
            "text/csv, application/json;q=0.9",
        ] {
            let reply = call(
                &mut store,
                "joe",
                "GET",
                "/disks/no-such-disk",
                "",
                Some(accept),
            );
            assert_error(&reply, 404, "disk (no-such-disk) does not exist");
        }
    }

    #[test]
    fn create_validation() {
        let mut store = PdiskStore::new("pdisk");
        let range = "Size must be an integer between 1 and 1024";
        for form in ["", "tag=x", "size=0", "size=1025", "size=-3"] {
            assert_error(&json(&mut store, "joe", "POST", "/disks", form), 400, range);
        }
        assert_error(
            &json(&mut store, "joe", "POST", "/disks", "size="),
            400,
            "Error parsing size: For input string: \\\"\\\"",
        );
        assert_error(
            &json(
                &mut store,
                "joe",
                "POST",
                "/disks/",
                "size=1&visibility=hidden",
            ),
            400,
            "Invalid value for form element visibility: No enum constant \
             eu.stratuslab.storage.disk.resources.BaseResource.DiskVisibility.HIDDEN",
        );
        assert_error(
            &json(&mut store, "joe", "POST", "/disks/", "size=1&type=FLOPPY"),
            500,
            INTERNAL,
        );
        assert!(store.disks().is_empty());

        let uuid = create(
            &mut store,
            "joe",
            "size=%2B1024&visibility=PuBlIc&identifier=img-1",
        );
        let disk = &store.disks()[0];
        assert_eq!(disk.uuid, uuid);
        assert_eq!((disk.size, disk.visibility), (1024, Visibility::Public));
        assert_eq!(
            (disk.owner.as_str(), disk.disk_type.as_str()),
            ("joe", DEFAULT_TYPE)
        );
        assert_error(
            &json(
                &mut store,
                "ann",
                "POST",
                "/disks/",
                "size=1&identifier=img-1",
            ),
            403,
            "Disk already registered",
        );
        // the form may name another owner (the cloud's own scripts do)
        create(&mut store, "pdisk", "size=2&owner=ann");
        assert_eq!(store.disks()[1].owner, "ann");
        // 1024 renders grouped
        let reply = json(&mut store, "joe", "GET", &format!("/disks/{uuid}"), "");
        assert!(
            text(&reply).contains("\"size\": \"1,024\",\r\n"),
            "{}",
            text(&reply)
        );
    }

    #[test]
    fn visibility_and_superuser_rules() {
        let mut store = PdiskStore::new("pdisk");
        let private = create(&mut store, "joe", "size=1");
        let public = create(&mut store, "joe", "size=1&visibility=public");

        assert_error(
            &json(&mut store, "ann", "GET", &format!("/disks/{private}/"), ""),
            403,
            &format!("insufficient access rights to view disk ({private})"),
        );
        assert_eq!(
            json(&mut store, "ann", "GET", &format!("/disks/{public}/"), "").status,
            200
        );
        assert_eq!(
            json(
                &mut store,
                "pdisk",
                "GET",
                &format!("/disks/{private}/"),
                ""
            )
            .status,
            200
        );

        assert_error(
            &attach(&mut store, "ann", &private, "node-1.example.org", 42),
            403,
            "Not enough rights to attach disk",
        );
        assert_eq!(
            attach(&mut store, "ann", &public, "node-1.example.org", 42).status,
            200
        );
        let detach = format!("/disks/{public}/mounts/{public}_42");
        assert_eq!(json(&mut store, "ann", "DELETE", &detach, "").status, 200);

        // only the owner or the super-user deletes, even a public disk
        assert_error(
            &json(
                &mut store,
                "ann",
                "DELETE",
                &format!("/disks/{public}/"),
                "",
            ),
            403,
            &format!("insufficient rights to delete disk ({public})"),
        );
        assert_error(
            &json(
                &mut store,
                "ann",
                "DELETE",
                &format!("/disks/{private}/"),
                "",
            ),
            403,
            &format!("insufficient access rights to view disk ({private})"),
        );
        // the service ignores its own edit check on PUT: a viewer may update a public disk
        let reply = json(
            &mut store,
            "ann",
            "PUT",
            &format!("/disks/{public}"),
            "tag=mine",
        );
        assert_eq!(reply.status, 204);
        assert_eq!(store.disks()[1].tag, "mine");
        assert_error(
            &json(
                &mut store,
                "ann",
                "PUT",
                &format!("/disks/{private}"),
                "tag=mine",
            ),
            403,
            &format!("insufficient access rights to view disk ({private})"),
        );
        // lists: own disks only, all for the super-user
        assert_eq!(
            text(&json(&mut store, "ann", "GET", "/disks/", "")),
            "[\r\n]\r\n"
        );
        let all = json(&mut store, "pdisk", "GET", "/disks/", "");
        assert_eq!(text(&all).matches("\"uuid\"").count(), 2);
        for uuid in [&private, &public] {
            let reply = json(&mut store, "pdisk", "DELETE", &format!("/disks/{uuid}"), "");
            assert_eq!(reply.status, 200);
        }
        assert!(store.disks().is_empty());
    }

    #[test]
    fn twenty_seventh_attachment_has_no_device() {
        let mut store = PdiskStore::new("pdisk");
        let mut devices = Vec::new();
        let mut last = String::new();
        for _ in 0..27 {
            last = create(&mut store, "joe", "size=1");
            let reply = attach(&mut store, "joe", &last, "node-1.example.org", 42);
            if reply.status == 200 {
                let target = text(&reply).split("\"target\" : \"").nth(1).unwrap();
                devices.push(target[..3].to_owned());
            } else {
                assert_error(&reply, 409, "no free devices available");
            }
        }
        let expected: Vec<String> = (b'a'..=b'z')
            .rev()
            .map(|c| format!("vd{}", c as char))
            .collect();
        assert_eq!(devices, expected);
        // another VM still starts at vdz; a boot-time registration needs no device
        assert!(
            text(&attach(&mut store, "joe", &last, "node-2.example.org", 7)).contains("\"vdz\"")
        );
        let form = "node=node-1.example.org&vm_id=42&register_only=TRUE";
        let reply = json(
            &mut store,
            "joe",
            "POST",
            &format!("/disks/{last}/mounts"),
            form,
        );
        assert_eq!(reply.status, 200);
        assert!(text(&reply).contains("\"target\" : \"static\""));
        // freeing vdm makes it the next device
        let vdm = store.disks()[13].uuid.clone();
        assert_eq!(
            json(
                &mut store,
                "joe",
                "DELETE",
                &format!("/disks/{vdm}/mounts/{vdm}_42"),
                ""
            )
            .status,
            200
        );
        let other = create(&mut store, "joe", "size=1");
        assert!(
            text(&attach(&mut store, "joe", &other, "node-1.example.org", 42)).contains("\"vdm\"")
        );
    }

    #[test]
    fn attach_errors() {
        let mut store = PdiskStore::new("pdisk");
        let uuid = create(&mut store, "joe", "size=1");
        let path = format!("/disks/{uuid}/mounts/");
        assert_error(
            &json(&mut store, "joe", "POST", &path, "vm_id=42"),
            400,
            "missing node attribute",
        );
        assert_error(
            &json(&mut store, "joe", "POST", &path, "node=&vm_id=42"),
            400,
            "missing node attribute",
        );
        assert_error(
            &json(&mut store, "joe", "POST", &path, "node=n"),
            400,
            "missing vm_id attribute",
        );
        assert_error(
            &json(
                &mut store,
                "joe",
                "POST",
                "/disks/nope/mounts",
                "node=n&vm_id=42",
            ),
            404,
            "Unknown disk: nope",
        );
        for (node, vm, why) in [
            ("node-1.example.org", "99", "VM 99 does not exist"),
            ("node-1.example.org", "abc", "VM abc does not exist"),
            ("node-1.example.org", "8", "VM 8 is not running"),
            ("node-1.example.org", "9", "VM 9 is not running"),
            (
                "node-2.example.org",
                "42",
                "VM 42 does not run on node node-2.example.org",
            ),
        ] {
            let reply = json(
                &mut store,
                "joe",
                "POST",
                &path,
                &format!("node={node}&vm_id={vm}"),
            );
            assert_error(
                &reply,
                500,
                &format!("Unable to attach persistent disk: {why}"),
            );
        }
        assert!(store.disks()[0].mounts.is_empty());
        assert_eq!(
            attach(&mut store, "joe", &uuid, "node-1.example.org", 42).status,
            200
        );
        assert_error(
            &attach(&mut store, "joe", &uuid, "node-1.example.org", 42),
            403,
            &format!("Mount already exists for: 42 and {uuid}"),
        );
        assert_eq!(
            store.disks()[0].mounts,
            vec![MountState {
                vm_id: "42".into(),
                device: "vdz".into(),
                node: "node-1.example.org".into()
            }]
        );
        let reply = json(&mut store, "joe", "GET", &format!("/disks/{uuid}"), "");
        assert!(text(&reply).contains("\"count\": \"1\",\r\n"));
    }

    #[test]
    fn detach_errors() {
        let mut store = PdiskStore::new("pdisk");
        let uuid = create(&mut store, "joe", "size=1");
        assert_eq!(
            attach(&mut store, "joe", &uuid, "node-1.example.org", 42).status,
            200
        );
        for path in [
            format!("/disks/{uuid}/mounts/{uuid}_7"),
            format!("/disks/{uuid}/mounts/{uuid}"),
            format!("/disks/{uuid}/mounts/nope_42"),
        ] {
            assert_error(
                &json(&mut store, "joe", "DELETE", &path, ""),
                404,
                NOT_FOUND,
            );
        }
        let mount = format!("{uuid}_42");
        assert_error(
            &json(
                &mut store,
                "joe",
                "DELETE",
                &format!("/disks/nope/mounts/{mount}"),
                "",
            ),
            404,
            "unknown disk: nope",
        );
        assert_error(
            &json(
                &mut store,
                "ann",
                "DELETE",
                &format!("/disks/{uuid}/mounts/{mount}"),
                "",
            ),
            403,
            "insufficient rights to detach disk",
        );
        assert_eq!(store.disks()[0].mounts.len(), 1);
        let reply = store.handle(
            "joe",
            "DELETE",
            &format!("/disks/{uuid}/mounts/{mount}"),
            "metadata_only=true",
            b"",
            ACCEPT_JSON,
            &vms,
        );
        assert_eq!(reply.status, 200);
        assert!(store.disks()[0].mounts.is_empty());
    }

    #[test]
    fn head_put_and_routes() {
        let mut store = PdiskStore::new("pdisk");
        let uuid = create(&mut store, "joe", "size=3");
        for path in [format!("/disks/{uuid}"), format!("/disks/{uuid}/")] {
            let reply = json(&mut store, "joe", "HEAD", &path, "");
            assert_eq!((reply.status, reply.body.len()), (200, 0));
            assert_eq!(reply.content_type, "application/json");
        }
        let reply = json(&mut store, "joe", "HEAD", "/disks/nope/", "");
        assert_eq!((reply.status, reply.body.len()), (404, 0));

        let path = format!("/disks/{uuid}");
        assert_error(
            &json(&mut store, "joe", "PUT", &path, ""),
            400,
            "post with null entity",
        );
        assert_error(
            &json(&mut store, "joe", "PUT", &path, "tag=kept&size=big"),
            400,
            "Error parsing size: For input string: \\\"big\\\"",
        );
        assert_eq!(store.disks()[0].tag, "", "a refused update changes nothing");
        assert_eq!(
            json(&mut store, "joe", "PUT", &path, "size=2000000000&tag=t").status,
            204
        );
        assert_eq!(
            (store.disks()[0].size, store.disks()[0].tag.as_str()),
            (2_000_000_000, "t")
        );

        assert_error(
            &json(&mut store, "joe", "GET", "/nothing", ""),
            404,
            NOT_FOUND,
        );
        assert_error(
            &json(&mut store, "joe", "GET", "/disks/a/b/c/d/e", ""),
            404,
            NOT_FOUND,
        );
        assert_error(
            &json(&mut store, "joe", "PATCH", "/disks/", ""),
            405,
            METHOD_NOT_ALLOWED,
        );
        assert_error(
            &json(&mut store, "joe", "DELETE", &format!("{path}/mounts"), ""),
            405,
            METHOD_NOT_ALLOWED,
        );
        let reply = json(&mut store, "joe", "GET", &format!("{path}/turl"), "");
        assert_eq!(reply.status, 501);
        let reply = json(&mut store, "joe", "POST", &path, "");
        assert_eq!(reply.status, 501);
    }

    #[test]
    fn origin_count_is_snapshots() {
        let mut store = PdiskStore::new("pdisk");
        let origin = create(
            &mut store,
            "pdisk",
            "size=5&type=MACHINE_IMAGE_ORIGIN&identifier=img",
        );
        for _ in 0..3 {
            let form = format!("size=5&type=MACHINE_IMAGE_LIVE&identifier=snapshot:{origin}");
            // identifiers must be unique at creation: register the snapshots one by one via PUT
            let uuid = create(&mut store, "pdisk", "size=5");
            let reply = json(&mut store, "pdisk", "PUT", &format!("/disks/{uuid}"), &form);
            assert_eq!(reply.status, 204);
        }
        let reply = json(&mut store, "pdisk", "GET", &format!("/disks/{origin}"), "");
        assert!(
            text(&reply).contains("\"count\": \"3\",\r\n"),
            "{}",
            text(&reply)
        );
    }

    #[test]
    fn seeding_and_state_access() {
        let mut store = PdiskStore::new("pdisk");
        store.seed(5_000, "joe");
        let uuid = create(&mut store, "ann", "size=1");
        let disks = store.disks();
        assert_eq!(disks.len(), 5_001);
        assert_eq!((disks[0].tag.as_str(), disks[0].size), ("seed-0", 1));
        assert_eq!(
            (disks[4_999].tag.as_str(), disks[4_999].size),
            ("seed-4999", 100)
        );
        assert!(disks.windows(2).all(|w| w[0].created < w[1].created));
        let reply = json(&mut store, "joe", "GET", "/disks/", "");
        assert_eq!(text(&reply).matches("\"uuid\"").count(), 5_000);
        assert!(text(&reply).starts_with(&format!(
            "[\r\n  {{\r\n    \"uuid\": \"{}\"",
            disks[4_999].uuid
        )));
        // deleting keeps the index consistent
        let first = disks[0].uuid.clone();
        assert_eq!(
            json(&mut store, "joe", "DELETE", &format!("/disks/{first}"), "").status,
            200
        );
        assert_eq!(
            json(&mut store, "ann", "GET", &format!("/disks/{uuid}"), "").status,
            200
        );
        assert_eq!(
            json(
                &mut store,
                "joe",
                "GET",
                &format!("/disks/{}", disks[1].uuid),
                ""
            )
            .status,
            200
        );
    }

    #[test]
    fn numbers_and_escapes() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_500_000_000), "1,500,000,000");
        assert_eq!(grouped(-1), "-1");
        assert_eq!(grouped(-12_345), "-12,345");
        assert_eq!(escape("a\"b\\c\nd\u{1}é'"), "a\\\"b\\\\c\\nd\\u0001é'");
    }

    /// The keys of a template or a reply, in order of first appearance.
    fn keys(text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            let word = &after[..end];
            let tail = after[end + 1..].trim_start();
            if !word.is_empty()
                && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && tail.starts_with(':')
                && !out.iter().any(|k| k == word)
            {
                out.push(word.to_owned());
            }
            rest = &after[end + 1..];
        }
        out
    }

    #[test]
    fn goldens_follow_the_real_templates() {
        let (mut store, a, b) = scenario();
        let reply = attach(&mut store, "joe", &b, "node-1.example.org", 42);
        let attach_reply = text(&reply).to_owned();
        for (template, reply) in [
            ("disk.ftl", golden("disk-full.json", &a, &b)),
            ("disks.ftl", golden("disks-list.json", &a, &b)),
            ("action.ftl", attach_reply),
            ("mount.ftl", golden("detach-200.json", &a, &b)),
            ("mounts.ftl", golden("mounts.json", &a, &b)),
            ("error.ftl", golden("error-409.json", &a, &b)),
        ] {
            let source =
                std::fs::read_to_string(fixture_path(&format!("templates/json/{template}")))
                    .unwrap();
            assert_eq!(keys(&source), keys(&reply), "{template}");
            let crlf = source.contains("\r\n");
            assert_eq!(reply.contains("\r\n"), crlf, "{template} line ends");
        }
        assert_eq!(keys(&golden("disk-full.json", &a, &b)).len(), 9);
    }

    proptest::proptest! {
        /// Any request gets a reply with a known status, and JSON errors stay valid JSON.
        #[test]
        fn any_request_gets_a_sane_reply(
            method in "(GET|HEAD|POST|PUT|DELETE|PATCH|get)",
            segments in proptest::collection::vec(
                "(disks|mounts|U|U_42|U_7|turl|instances|[a-z0-9_.%-]{0,6})", 0..6),
            trailing in proptest::bool::ANY,
            body in "(size|tag|visibility|node|vm_id|register_only|type|owner|identifier|=|&|[a-z0-9%+\"\\\\]){0,12}",
            user in "(joe|ann|pdisk)",
        ) {
            let mut store = PdiskStore::new("pdisk");
            let uuid = create(&mut store, "joe", "size=1&visibility=public");
            assert_eq!(attach(&mut store, "joe", &uuid, "node-1.example.org", 42).status, 200);
            let mut path = format!("/disks/{}", segments.join("/")).replace('U', &uuid);
            if trailing {
                path.push('/');
            }
            let reply = call(&mut store, &user, &method, &path, &body, ACCEPT_JSON);
            proptest::prop_assert!(
                [200, 201, 204, 400, 403, 404, 405, 409, 500, 501].contains(&reply.status),
                "{} {} -> {}", method, path, reply.status
            );
            if reply.status >= 400 && method != "HEAD" {
                let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
                proptest::prop_assert_eq!(parsed["code"].as_u64(), Some(u64::from(reply.status)));
            }
            if reply.content_type == "application/json" && !reply.body.is_empty() {
                proptest::prop_assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok());
            }
        }
    }
}
