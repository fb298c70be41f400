//! Template instantiation: expanding a parsed template the way oned stores it (DISK, NIC,
//! CONTEXT substitution).

use super::*;

impl ComputeState {
    /// Expands a parsed template the way oned stores it and adds the VM (PENDING); on error
    /// nothing is kept (leases are given back).
    pub(super) fn instantiate(
        &mut self,
        id: i64,
        user: &User,
        attrs: Vec<(String, TemplateValue)>,
        raw_template: String,
        stime: i64,
    ) -> Result<(), String> {
        let mut leases = Vec::new();
        match self.expand(id, user, attrs, &mut leases) {
            Ok(template) => {
                let name = template
                    .iter()
                    .find_map(|(k, v)| match v {
                        TemplateValue::Single(s) if k == "NAME" => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                self.vms.insert(
                    id,
                    Vm {
                        id,
                        uid: user.id,
                        gid: user.gid,
                        uname: user.name.clone(),
                        gname: user.gname.clone(),
                        name,
                        state: PENDING,
                        lcm: LCM_INIT,
                        resched: false,
                        stime,
                        etime: 0,
                        last_poll: 0,
                        deploy_id: String::new(),
                        template,
                        raw_template,
                        history: Vec::new(),
                        leases,
                        plan: VecDeque::new(),
                        info_doc: None,
                        pool_doc: None,
                    },
                );
                one7::acquire_images(self, id);
                self.touch(id);
                Ok(())
            }
            Err(detail) => {
                for (net, offset) in leases {
                    if let Some(network) = self.networks.get_mut(net) {
                        network.used.remove(&offset);
                    }
                }
                Err(detail)
            }
        }
    }

    /// NAME default, NIC leases, DISK expansion, GRAPHICS port, CONTEXT variables, VMID; keys
    /// sorted (oned keeps templates in a sorted multimap).
    pub(super) fn expand(
        &mut self,
        id: i64,
        user: &User,
        attrs: Vec<(String, TemplateValue)>,
        leases: &mut Vec<(usize, u32)>,
    ) -> Result<Vec<(String, TemplateValue)>, String> {
        let mut out: Vec<(String, TemplateValue)> = Vec::with_capacity(attrs.len() + 2);
        let mut disk_id = 0usize;
        for (key, value) in attrs {
            let value = match value {
                TemplateValue::Vector(pairs) => {
                    let mut map: BTreeMap<String, String> = BTreeMap::new();
                    for (k, v) in pairs {
                        map.entry(k).or_insert(v);
                    }
                    match key.as_str() {
                        "NIC" => self.lease_nic(user, &mut map, leases)?,
                        "DISK" => {
                            if self.plain.is_some() {
                                one7::expand_disk(self, &mut map, disk_id, user.id, user.gid == 0)?;
                            } else {
                                self.expand_disk(&mut map, disk_id)?;
                            }
                            disk_id += 1;
                        }
                        "GRAPHICS" => {
                            map.entry("PORT".into())
                                .or_insert_with(|| (5900 + id).to_string());
                        }
                        _ => {}
                    }
                    TemplateValue::Vector(map.into_iter().collect())
                }
                single => single,
            };
            out.push((key, value));
        }
        if !out.iter().any(|(k, _)| k == "NAME") {
            out.push(("NAME".into(), TemplateValue::Single(format!("one-{id}"))));
        }
        out.push(("VMID".into(), TemplateValue::Single(id.to_string())));
        let context_at = out.iter().position(|(k, _)| k == "CONTEXT");
        if let Some(at) = context_at {
            if let TemplateValue::Vector(pairs) = &out[at].1 {
                let mut pairs: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), substitute(v, &out)))
                    .collect();
                if !pairs.iter().any(|(k, _)| k == "DISK_ID") {
                    pairs.push(("DISK_ID".into(), disk_id.to_string()));
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                out[at].1 = TemplateValue::Vector(pairs);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(super) fn expand_disk(
        &self,
        disk: &mut BTreeMap<String, String>,
        disk_id: usize,
    ) -> Result<(), String> {
        let image = match (disk.get("IMAGE_ID"), disk.get("IMAGE")) {
            (Some(iid), _) => {
                let iid = iid
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| "Wrong ID set in IMAGE_ID".to_owned())?;
                if iid != IMAGE_ID {
                    return Err(format!("Image with ID: {iid} does not exists"));
                }
                true
            }
            (None, Some(name)) => {
                if name != IMAGE_NAME {
                    return Err(format!("Image {name} does not exists for user 0"));
                }
                true
            }
            (None, None) => false,
        };
        if image {
            for (k, v) in [
                ("CLONE", "YES"),
                ("DATASTORE", "default"),
                ("DATASTORE_ID", "1"),
                ("IMAGE", IMAGE_NAME),
                ("IMAGE_ID", "0"),
                ("READONLY", "NO"),
                ("SAVE", "NO"),
                ("SOURCE", "dummy_path"),
                ("TM_MAD", "dummy"),
                ("TYPE", "FILE"),
            ] {
                disk.insert(k.into(), v.into());
            }
        } else if self.dialect != Dialect::One32 {
            // 3.8+ only know volatile disks outside the image repository; StratusLab's 3.2 with
            // tm_stratuslab took DISK=[SOURCE=<url>] as is.
            let kind = disk.get("TYPE").cloned().unwrap_or_default().to_uppercase();
            if kind != "SWAP" && kind != "FS" {
                return Err(format!("Unknown disk type {kind}"));
            }
        }
        disk.entry("DEV_PREFIX".into())
            .or_insert_with(|| "hd".into());
        disk.insert("DISK_ID".into(), disk_id.to_string());
        Ok(())
    }
}

/// Replaces `$NAME`, `$NIC[IP]`, `$NIC[IP, NETWORK_ID=0]`, `$NIC[IP, NETWORK="public"]`, ...
/// from the (already expanded) template, as oned does for CONTEXT; unknown → empty.
pub(super) fn substitute(value: &str, template: &[(String, TemplateValue)]) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let name = after[..name_len].to_uppercase();
        let mut tail = &after[name_len..];
        let mut selector: Option<(String, Option<(String, String)>)> = None;
        if let Some(inner) = tail.strip_prefix('[') {
            if let Some(close) = inner.find(']') {
                let body = &inner[..close];
                let mut parts = body.splitn(2, ',');
                let attr = parts.next().unwrap_or("").trim().to_uppercase();
                let cond = parts.next().and_then(|c| {
                    let (k, v) = c.split_once('=')?;
                    Some((
                        k.trim().to_uppercase(),
                        v.trim().trim_matches('"').to_owned(),
                    ))
                });
                selector = Some((attr, cond));
                tail = &inner[close + 1..];
            }
        }
        let found = template.iter().find_map(|(k, v)| {
            if *k != name {
                return None;
            }
            match (v, &selector) {
                (TemplateValue::Single(s), None) => Some(s.clone()),
                (TemplateValue::Vector(pairs), Some((attr, cond))) => {
                    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                    let cond_ok = cond
                        .as_ref()
                        .is_none_or(|(ck, cv)| get(ck).is_some_and(|v| v == cv));
                    if cond_ok {
                        get(attr).cloned()
                    } else {
                        None
                    }
                }
                _ => None,
            }
        });
        out.push_str(&found.unwrap_or_default());
        rest = tail;
    }
    out.push_str(rest);
    out
}
