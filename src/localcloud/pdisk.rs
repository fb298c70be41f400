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
    pub uuid: String,
    pub tag: String,
    pub owner: String,
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
            "text/html" | "application/xhtml+xml" | "text/plain" | "text/*" | "application/*"
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
        if i > 0 && (digits.len() - i) % 3 == 0 {
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
    out.push_str(&format!("    \"type\": \"{}\",\r\n", escape(&disk.disk_type)));
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
