//! pdisk volumes: listing with their mounts, create, destroy, attach, detach.

use super::*;

impl Driver {
    /// `list_volumes`: every selected site concurrently; the mounts of each disk in use are
    /// read too (concurrently; a failure there is only logged: the disk is listed without them).
    pub async fn list_volumes(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<(String, Result<Vec<VolumeRecord>>)>> {
        let mut sites = self.selected(site)?;
        // Plain OpenNebula sites have no pdisk: their volumes are `plain_list_volumes`'.
        sites.retain(|s| s.kind == SiteKind::StratusLab);
        let results = join_all(sites.iter().map(|s| self.list_site_volumes(s))).await;
        Ok(sites.iter().map(|s| s.name.clone()).zip(results).collect())
    }

    pub(super) async fn list_site_volumes(&self, s: &Site) -> Result<Vec<VolumeRecord>> {
        let disks = s
            .pdisk
            .list()
            .await
            .at(s, Service::Pdisk, "list_volumes (GET /disks/)")?;
        let mounts = join_all(disks.iter().map(|d| async move {
            if d.count == 0 {
                return Vec::new();
            }
            s.pdisk.mounts(&d.uuid).await.unwrap_or_else(|e| {
                log::warn!(target: "stratuslab_libcloud", "site '{}': list_volumes: cannot read the mounts of {}: {e}", s.name, d.uuid);
                Vec::new()
            })
        }))
        .await;
        Ok(disks
            .into_iter()
            .zip(mounts)
            .map(|(disk, mounts)| VolumeRecord {
                site: s.name.clone(),
                disk,
                mounts,
            })
            .collect())
    }

    /// `create_volume`: checks before sending, then POST, then describes the new disk.
    pub async fn create_volume(
        &self,
        site: &str,
        size_gib: i64,
        name: &str,
        visibility: &str,
    ) -> Result<VolumeRecord> {
        let s = self.site(site)?;
        if !(1..=1024).contains(&size_gib) {
            return Err(Error::invalid(format!(
                "volume size must be between 1 and 1024 GiB, not {size_gib}"
            )));
        }
        let tag = name.trim();
        if tag.is_empty() {
            return Err(Error::invalid("volume name must not be empty"));
        }
        if tag.chars().count() > 40 {
            return Err(Error::invalid(format!(
                "volume name is {} characters long; pdisk tags are at most 40",
                tag.chars().count()
            )));
        }
        let vis = Visibility::parse(visibility).ok_or_else(|| {
            Error::invalid(format!(
                "visibility must be 'private' or 'public', not '{visibility}'"
            ))
        })?;
        let uuid = s.pdisk.create(size_gib as u32, tag, vis).await.at(
            s,
            Service::Pdisk,
            "create_volume (POST /disks/)",
        )?;
        let disk = s.pdisk.describe(&uuid).await.at(
            s,
            Service::Pdisk,
            "create_volume (GET /disks/<uuid>)",
        )?;
        Ok(VolumeRecord {
            site: s.name.clone(),
            disk: disk.into(),
            mounts: Vec::new(),
        })
    }

    /// `destroy_volume`.
    pub async fn destroy_volume(&self, site: &str, uuid: &str) -> Result<()> {
        let s = self.site(site)?;
        s.pdisk
            .delete(uuid)
            .await
            .at(s, Service::Pdisk, "destroy_volume (DELETE /disks/<uuid>)")
    }

    /// `attach_volume`: the node must be RUNNING; its host comes from a fresh `one.vm.info`.
    pub async fn attach_volume(&self, site: &str, vm_id: i64, uuid: &str) -> Result<String> {
        let s = self.site(site)?;
        let vm = self.vm(s, vm_id, "attach_volume (one.vm.info)").await?;
        let refused = |message: String| {
            Error::state(
                s.context(Service::Compute, "attach_volume (one.vm.info)"),
                message,
            )
        };
        if !(vm.state == 3 && vm.lcm_state == 3) {
            return Err(refused(format!(
                "VM {vm_id} is not in running state ({}), so the volume cannot be attached",
                states::summary_label(vm.state, vm.lcm_state)
            )));
        }
        let host = vm
            .current_host()
            .ok_or_else(|| refused(format!("VM {vm_id} has no host yet")))?;
        s.pdisk.attach(uuid, host, vm_id).await.at(
            s,
            Service::Pdisk,
            "attach_volume (POST /disks/<uuid>/mounts/)",
        )
    }

    /// `detach_volume`: unmounts the disk from each of the caller's VMs it is mounted on, in
    /// any state (DONE included), and from VMs that no longer exist (a mount left behind).
    pub async fn detach_volume(&self, site: &str, uuid: &str) -> Result<Vec<(i64, String)>> {
        let s = self.site(site)?;
        let context = |op: &str| s.context(Service::Pdisk, op);
        let mounts_op = "detach_volume (GET /disks/<uuid>/mounts)";
        let mounts = s
            .pdisk
            .mounts(uuid)
            .await
            .at(s, Service::Pdisk, mounts_op)?;
        if mounts.is_empty() {
            return Err(Error::state(
                context(mounts_op),
                format!("volume {uuid} is not attached to any node"),
            ));
        }
        let pool = s.one.vm_pool(POOL_MINE, POOL_STATE_ANY).await.at(
            s,
            Service::Compute,
            "detach_volume (one.vmpool.info)",
        )?;
        let mut mine: HashSet<i64> = parse_pool(pool.as_bytes())
            .at(s, Service::Compute, "detach_volume (one.vmpool.info)")?
            .into_iter()
            .map(|v| v.id)
            .collect();
        let others: Vec<i64> = mounts
            .iter()
            .map(|m| m.vm_id)
            .filter(|id| !mine.contains(id))
            .collect();
        for vm_id in others {
            if self.vm_is_gone(s, vm_id).await? {
                mine.insert(vm_id);
            }
        }
        let mut detached = Vec::new();
        for m in mounts.iter().filter(|m| mine.contains(&m.vm_id)) {
            let target = s.pdisk.detach(uuid, m.vm_id).await.map_err(|e| {
                Error::remote(
                    context("detach_volume (DELETE /disks/<uuid>/mounts/<id>)"),
                    e,
                )
            })?;
            detached.push((m.vm_id, target));
        }
        if detached.is_empty() {
            return Err(Error::state(
                context(mounts_op),
                format!("volume {uuid} is mounted only on VMs that are not yours"),
            ));
        }
        Ok(detached)
    }

    /// Whether VM `vm_id` no longer exists at the site (OpenNebula's `NO_EXISTS`); a VM that
    /// exists but is someone else's (readable or not) is not gone.
    pub(super) async fn vm_is_gone(&self, s: &Site, vm_id: i64) -> Result<bool> {
        const NO_EXISTS: i64 = 0x400;
        const AUTHORIZATION: i64 = 0x200;
        match s.one.vm_info(vm_id).await {
            Ok(_) => Ok(false),
            Err(e @ OneError::Refused { .. }) => match e.service_code() {
                Some(NO_EXISTS) => Ok(true),
                Some(AUTHORIZATION) => Ok(false),
                _ => Err(Error::remote(
                    s.context(Service::Compute, "detach_volume (one.vm.info)"),
                    e,
                )),
            },
            Err(e) => Err(Error::remote(
                s.context(Service::Compute, "detach_volume (one.vm.info)"),
                e,
            )),
        }
    }
}
