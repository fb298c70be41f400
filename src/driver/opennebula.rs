//! Plain OpenNebula sites (`site_type = opennebula`): the daemon alone, 3.8 to 7.x. Images and
//! VM templates come from its pools, volumes are persistent DATABLOCK images hot-plugged with
//! `one.vm.attach`/`detach`, networks come from its vnet pool. Compute (list, info, actions) is
//! the StratusLab sites' ([`super::Driver`]); only where images, volumes and networks come from
//! is chosen here, per site.

use futures_util::future::join_all;

use super::{ctx, CreateNode, Driver, NodeRecord, Site};
use crate::config::SiteSettings;
use crate::error::{Error, Result};
use crate::one::client::{Version, POOL_ALL, POOL_MINE};
use crate::one::plain::{self, PlainVm};
use crate::one::pools::{
    self, ImageRecord, NetworkRecord, TemplateRecord, VmDisk, IMAGE_DATABLOCK, IMAGE_OS,
};
use crate::one::vm::VmRecord;

/// The config key and constructor argument (`ex_site_type`) that say what a site is.
pub const SITE_TYPE_KEY: &str = "site_type";

/// What kind of site a config section describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SiteKind {
    /// OpenNebula 3.x behind one-proxy, Marketplace images, pdisk volumes.
    #[default]
    StratusLab,
    /// A plain OpenNebula daemon (XML-RPC endpoint `http(s)://host:2633/RPC2`).
    OpenNebula,
}

impl SiteKind {
    /// The site's `site_type` (`stratuslab` when absent; case and surrounding space ignored).
    pub fn of(settings: &SiteSettings) -> Result<SiteKind> {
        match settings
            .get(SITE_TYPE_KEY)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => Ok(SiteKind::StratusLab),
            Some(v) if v == "stratuslab" => Ok(SiteKind::StratusLab),
            Some(v) if v == "opennebula" => Ok(SiteKind::OpenNebula),
            Some(v) => Err(Error::Config(crate::config::ConfigError::BadValue {
                location: "settings".to_owned(),
                site: settings.name.clone(),
                key: SITE_TYPE_KEY.to_owned(),
                reason: format!("unknown site type '{v}' (stratuslab or opennebula)"),
            })),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SiteKind::StratusLab => "stratuslab",
            SiteKind::OpenNebula => "opennebula",
        }
    }
}

/// A plain site's endpoint must be the daemon's XML-RPC URL (`http(s)://host:2633/RPC2`).
pub(super) fn check_endpoint(
    s: &SiteSettings,
    kind: SiteKind,
    one: &crate::one::client::OneClient,
) -> Result<()> {
    if kind == SiteKind::OpenNebula && !one.is_direct() {
        return Err(Error::Config(crate::config::ConfigError::BadValue {
            location: "settings".to_owned(),
            site: s.name.clone(),
            key: "endpoint".to_owned(),
            reason: format!(
                "an OpenNebula site's endpoint is the daemon's XML-RPC URL ending in /RPC2 (such as http://host:2633/RPC2), not {}",
                one.url()
            ),
        }));
    }
    Ok(())
}

/// Image `STATE`s a VM can boot from (READY, USED by non-persistent clones).
const BOOTABLE_STATES: [i32; 2] = [1, 2];

/// Something a plain site boots from.
#[derive(Debug, Clone)]
pub enum PlainImage {
    Image {
        site: String,
        image: ImageRecord,
    },
    Template {
        site: String,
        template: TemplateRecord,
    },
}

impl PlainImage {
    /// `image-<n>@<site>` or `template-<n>@<site>`.
    pub fn id(&self) -> String {
        match self {
            PlainImage::Image { site, image } => format!("image-{}@{site}", image.id),
            PlainImage::Template { site, template } => format!("template-{}@{site}", template.id),
        }
    }
}

/// A persistent DATABLOCK image as a volume, with the disks of the VMs using it.
#[derive(Debug, Clone)]
pub struct PlainVolume {
    pub site: String,
    pub image: ImageRecord,
    /// (VM id, its disk) for each VM whose disks include the image.
    pub attachments: Vec<(i64, VmDisk)>,
}

impl PlainVolume {
    /// `volume-<n>@<site>`.
    pub fn id(&self) -> String {
        format!("volume-{}@{}", self.image.id, self.site)
    }
}

/// What an id of this module refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainRef {
    Image(i64),
    Template(i64),
    Volume(i64),
}

/// Reads `image-<n>[@site]`, `template-<n>[@site]`, `volume-<n>[@site]`; a site part must be
/// `site`.
pub fn parse_ref(id: &str, site: &str) -> Result<PlainRef> {
    let (local, at) = match id.rsplit_once('@') {
        Some((local, at)) => (local, Some(at)),
        None => (id, None),
    };
    if let Some(at) = at {
        if at != site {
            return Err(Error::invalid(format!(
                "'{id}' belongs to site '{at}', not '{site}'"
            )));
        }
    }
    let number = |rest: &str| -> Option<i64> {
        (!rest.is_empty() && rest.len() <= 18 && rest.bytes().all(|b| b.is_ascii_digit()))
            .then(|| rest.parse().ok())
            .flatten()
    };
    let parsed = if let Some(rest) = local.strip_prefix("image-") {
        number(rest).map(PlainRef::Image)
    } else if let Some(rest) = local.strip_prefix("template-") {
        number(rest).map(PlainRef::Template)
    } else if let Some(rest) = local.strip_prefix("volume-") {
        number(rest).map(PlainRef::Volume)
    } else {
        None
    };
    parsed.ok_or_else(|| {
        Error::invalid(format!(
            "'{id}' is not an OpenNebula image, template or volume id (image-<n>@{site}, template-<n>@{site}, volume-<n>@{site})"
        ))
    })
}

fn datastore_of(s: &Site, datastore: Option<&str>) -> Result<i64> {
    let value = datastore
        .or(s.settings.get("datastore"))
        .map(str::trim)
        .unwrap_or("1");
    value
        .parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "datastore must be an OpenNebula datastore id (a number), not '{value}'"
            ))
        })
}

/// The `NodeImage` id a plain site's VM was booted from: `image-<n>@<site>` of its root disk
/// (`DISK_ID` 0, else the first disk) when that is a pool image (`IMAGE_ID`), else
/// `template-<n>@<site>` when the document names the template it was instantiated from
/// (`TEMPLATE_ID`). The root disk comes first because every body carries it: from 5.8 the short
/// `one.vmpool.info` body that `list_nodes` reads has no `TEMPLATE_ID`
/// (`VirtualMachine::to_xml_short`, `release-7.4.0`), and a node must not change image between
/// `list_nodes` and `ex_get_node`.
pub fn node_image_id(site: &str, vm: &VmRecord) -> Option<String> {
    let disks = &vm.template.disks;
    let root = disks
        .iter()
        .find(|d| d.disk_id == Some(0))
        .or_else(|| disks.first());
    match (root.and_then(|d| d.image_id), vm.template.template_id) {
        (Some(n), _) => Some(format!("image-{n}@{site}")),
        (None, Some(t)) => Some(format!("template-{t}@{site}")),
        (None, None) => None,
    }
}

impl Driver {
    /// The site with this name, which must be a plain OpenNebula site.
    pub fn plain_site(&self, name: &str) -> Result<&Site> {
        let s = self.site(name)?;
        if s.kind != SiteKind::OpenNebula {
            return Err(Error::invalid(format!(
                "site '{name}' is a StratusLab site (site_type = stratuslab); this operation needs site_type = opennebula"
            )));
        }
        Ok(s)
    }

    async fn plain_version(&self, s: &Site, operation: &str) -> Result<Version> {
        s.one.version().await.map_err(|e| {
            Error::remote(
                ctx(
                    &s.name,
                    s.one.url(),
                    &format!("{operation} (one.system.version)"),
                ),
                e,
            )
        })
    }

    /// `list_images` of a plain site: the OS images a VM can boot from (READY or USED,
    /// not persistent) and every VM template the user can use, each in id order.
    pub async fn plain_list_images(&self, site: &str) -> Result<Vec<PlainImage>> {
        let s = self.plain_site(site)?;
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        let (images, templates) = tokio::join!(
            pools::image_pool(&s.one, POOL_ALL),
            pools::template_pool(&s.one, POOL_ALL)
        );
        let mut images =
            images.map_err(|e| Error::remote(context("list_images (one.imagepool.info)"), e))?;
        let mut templates = templates
            .map_err(|e| Error::remote(context("list_images (one.templatepool.info)"), e))?;
        images
            .retain(|i| i.kind == IMAGE_OS && !i.persistent && BOOTABLE_STATES.contains(&i.state));
        images.sort_by_key(|i| i.id);
        templates.sort_by_key(|t| t.id);
        Ok(images
            .into_iter()
            .map(|image| PlainImage::Image {
                site: s.name.clone(),
                image,
            })
            .chain(templates.into_iter().map(|template| PlainImage::Template {
                site: s.name.clone(),
                template,
            }))
            .collect())
    }

    /// `get_image` on a plain site: `image-<n>` (`one.image.info`) or `template-<n>`
    /// (`one.template.info`).
    pub async fn plain_get_image(&self, site: &str, id: &str) -> Result<PlainImage> {
        let s = self.plain_site(site)?;
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        match parse_ref(id, &s.name)? {
            PlainRef::Image(n) => Ok(PlainImage::Image {
                site: s.name.clone(),
                image: pools::image_info(&s.one, n)
                    .await
                    .map_err(|e| Error::remote(context("get_image (one.image.info)"), e))?,
            }),
            PlainRef::Template(n) => Ok(PlainImage::Template {
                site: s.name.clone(),
                template: pools::template_info(&s.one, n)
                    .await
                    .map_err(|e| Error::remote(context("get_image (one.template.info)"), e))?,
            }),
            PlainRef::Volume(_) => Err(Error::invalid(format!(
                "'{id}' is a volume, not an image (use list_volumes)"
            ))),
        }
    }

    /// `ex_list_networks`: the virtual networks of every plain site (or of the named site),
    /// concurrently; one result per site.
    pub async fn plain_list_networks(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<(String, Result<Vec<NetworkRecord>>)>> {
        let sites: Vec<&Site> = match site {
            Some(name) => vec![self.plain_site(name)?],
            None => self
                .sites
                .iter()
                .filter(|s| s.kind == SiteKind::OpenNebula)
                .collect(),
        };
        let results = join_all(sites.iter().map(|s| async move {
            let mut nets = pools::network_pool(&s.one, POOL_ALL).await.map_err(|e| {
                Error::remote(
                    ctx(&s.name, s.one.url(), "ex_list_networks (one.vnpool.info)"),
                    e,
                )
            })?;
            nets.sort_by_key(|n| n.id);
            Ok(nets)
        }))
        .await;
        Ok(sites.iter().map(|s| s.name.clone()).zip(results).collect())
    }

    /// The id of `network` (an id, or a name of the vnet pool).
    async fn network_id(&self, s: &Site, network: &str) -> Result<i64> {
        let network = network.trim();
        if !network.is_empty() && network.len() <= 18 && network.bytes().all(|b| b.is_ascii_digit())
        {
            return network
                .parse()
                .map_err(|_| Error::invalid(format!("bad network id '{network}'")));
        }
        let nets = pools::network_pool(&s.one, POOL_ALL).await.map_err(|e| {
            Error::remote(
                ctx(&s.name, s.one.url(), "create_node (one.vnpool.info)"),
                e,
            )
        })?;
        nets.iter()
            .find(|n| n.name == network)
            .map(|n| n.id)
            .ok_or_else(|| {
                let known: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
                Error::invalid(format!(
                    "site '{}' has no virtual network '{network}' (known: {})",
                    s.name,
                    known.join(", ")
                ))
            })
    }

    /// `create_node` on a plain site: from `image-<n>`, one `one.vm.allocate` with
    /// `DISK = [ IMAGE_ID = n ]`; from `template-<n>`, one `one.template.instantiate` whose
    /// extra template carries the size, the NIC and the template's CONTEXT merged with the SSH
    /// key, `NETWORK = "YES"` and the caller's values. Every value is checked for the site's
    /// version before the request that creates the VM.
    pub(super) async fn plain_create_node(&self, s: &Site, req: CreateNode) -> Result<NodeRecord> {
        if req.name.trim() != req.name || req.name.is_empty() {
            return Err(Error::invalid(format!(
                "node name {:?} is empty or starts or ends with white space",
                req.name
            )));
        }
        if req.cpu == 0 || req.ram_mib == 0 {
            return Err(Error::invalid(format!(
                "size '{}' has no CPU or RAM",
                req.size_name
            )));
        }
        let source = parse_ref(req.image.trim(), &s.name)?;
        let public_key = self.public_key(s, &req)?;
        let mut context = vec![
            ("SSH_PUBLIC_KEY".to_owned(), public_key),
            ("NETWORK".to_owned(), "YES".to_owned()),
        ];
        for (k, v) in &req.context {
            let upper = k.to_ascii_uppercase();
            context.retain(|(key, _)| key.to_ascii_uppercase() != upper);
            context.push((k.clone(), v.clone()));
        }
        let mut spec = PlainVm {
            name: req.name.clone(),
            cpu: f64::from(req.cpu),
            vcpu: req.cpu,
            memory_mib: req.ram_mib,
            image_id: None,
            network_id: None,
            context,
        };
        let version = self.plain_version(s, "create_node").await?;
        // Checked with placeholders before any lookup.
        spec.image_id = Some(0);
        plain::render_vm(&spec, version, true).map_err(|e| Error::invalid(e.to_string()))?;
        let network = req
            .network
            .clone()
            .or_else(|| s.settings.get("default_network").map(str::to_owned));
        if let Some(net) = &network {
            spec.network_id = Some(self.network_id(s, net).await?);
        }
        let context = |op: &str| ctx(&s.name, s.one.url(), op);
        let vm_id = match source {
            PlainRef::Image(n) => {
                spec.image_id = Some(n);
                let text = plain::render_vm(&spec, version, true)
                    .map_err(|e| Error::invalid(e.to_string()))?;
                s.one
                    .allocate(&text)
                    .await
                    .map_err(|e| Error::remote(context("create_node (one.vm.allocate)"), e))?
            }
            PlainRef::Template(n) => {
                spec.image_id = None;
                let template = pools::template_info(&s.one, n)
                    .await
                    .map_err(|e| Error::remote(context("create_node (one.template.info)"), e))?;
                let mut merged = template.context.clone();
                for (k, v) in &spec.context {
                    let upper = k.to_ascii_uppercase();
                    merged.retain(|(key, _)| key.to_ascii_uppercase() != upper);
                    merged.push((k.clone(), v.clone()));
                }
                // oned adds these to a stored CONTEXT; they are not the caller's to send.
                merged.retain(|(k, _)| {
                    !matches!(k.to_ascii_uppercase().as_str(), "DISK_ID" | "TARGET")
                });
                spec.context = merged;
                plain::check_name(&spec.name, version)
                    .map_err(|e| Error::invalid(e.to_string()))?;
                let extra = plain::render_vm(&spec, version, false)
                    .map_err(|e| Error::invalid(e.to_string()))?;
                pools::template_instantiate(&s.one, n, &spec.name, &extra)
                    .await
                    .map_err(|e| {
                        Error::remote(context("create_node (one.template.instantiate)"), e)
                    })?
            }
            PlainRef::Volume(_) => {
                return Err(Error::invalid(format!(
                    "'{}' is a volume, not an image or a template",
                    req.image
                )))
            }
        };
        match self.vm(s, vm_id, "create_node (one.vm.info)").await {
            Ok(vm) => Ok(super::site_node_record(s, vm, &self.instance_types)),
            Err(e) => {
                log::warn!(target: "stratuslab_libcloud", "site '{}': VM {vm_id} was created but reading it back failed: {e}", s.name);
                let vm = VmRecord {
                    id: vm_id,
                    name: req.name.clone(),
                    state: 1,
                    ..VmRecord::default()
                };
                Ok(super::site_node_record(s, vm, &self.instance_types))
            }
        }
    }

    /// The disks of the VMs using `image` (those that can be read; others are logged).
    async fn attachments(&self, s: &Site, image: &ImageRecord) -> Vec<(i64, VmDisk)> {
        let disks = join_all(
            image
                .vms
                .iter()
                .map(|&vm| async move { (vm, pools::vm_disks(&s.one, vm).await) }),
        )
        .await;
        let mut out = Vec::new();
        for (vm, result) in disks {
            match result {
                Ok(disks) => out.extend(
                    disks
                        .into_iter()
                        .filter(|d| d.image_id == Some(image.id))
                        .map(|d| (vm, d)),
                ),
                Err(e) => {
                    log::warn!(target: "stratuslab_libcloud", "site '{}': cannot read the disks of VM {vm}: {e}", s.name)
                }
            }
        }
        out
    }

    /// `list_volumes` of one plain site: the caller's persistent DATABLOCK images.
    pub async fn plain_site_volumes(&self, s: &Site) -> Result<Vec<PlainVolume>> {
        let mut images = pools::image_pool(&s.one, POOL_MINE).await.map_err(|e| {
            Error::remote(
                ctx(&s.name, s.one.url(), "list_volumes (one.imagepool.info)"),
                e,
            )
        })?;
        images.retain(|i| i.kind == IMAGE_DATABLOCK && i.persistent);
        images.sort_by_key(|i| i.id);
        let attachments = join_all(images.iter().map(|i| self.attachments(s, i))).await;
        Ok(images
            .into_iter()
            .zip(attachments)
            .map(|(image, attachments)| PlainVolume {
                site: s.name.clone(),
                image,
                attachments,
            })
            .collect())
    }

    /// `list_volumes` of every plain site (or the named one), concurrently.
    pub async fn plain_list_volumes(
        &self,
        site: Option<&str>,
    ) -> Result<Vec<(String, Result<Vec<PlainVolume>>)>> {
        let sites: Vec<&Site> = match site {
            Some(name) => {
                let s = self.site(name)?;
                if s.kind == SiteKind::OpenNebula {
                    vec![s]
                } else {
                    Vec::new()
                }
            }
            None => self
                .sites
                .iter()
                .filter(|s| s.kind == SiteKind::OpenNebula)
                .collect(),
        };
        let results = join_all(sites.iter().map(|s| self.plain_site_volumes(s))).await;
        Ok(sites.iter().map(|s| s.name.clone()).zip(results).collect())
    }

    async fn plain_volume(&self, s: &Site, image_id: i64, operation: &str) -> Result<PlainVolume> {
        let image = pools::image_info(&s.one, image_id).await.map_err(|e| {
            Error::remote(
                ctx(
                    &s.name,
                    s.one.url(),
                    &format!("{operation} (one.image.info)"),
                ),
                e,
            )
        })?;
        let attachments = self.attachments(s, &image).await;
        Ok(PlainVolume {
            site: s.name.clone(),
            image,
            attachments,
        })
    }

    fn volume_ref(s: &Site, id: &str) -> Result<i64> {
        match parse_ref(id, &s.name)? {
            PlainRef::Volume(n) => Ok(n),
            _ => Err(Error::invalid(format!(
                "'{id}' is not a volume id (volume-<n>@{})",
                s.name
            ))),
        }
    }

    /// `create_volume` on a plain site: one persistent DATABLOCK image of `size_gib` GiB in
    /// `datastore` (an id; default the site's `datastore`, else 1).
    pub async fn plain_create_volume(
        &self,
        site: &str,
        size_gib: i64,
        name: &str,
        datastore: Option<&str>,
    ) -> Result<PlainVolume> {
        let s = self.plain_site(site)?;
        let size_mib = u64::try_from(size_gib)
            .ok()
            .filter(|g| (1..=1 << 20).contains(g))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "volume size must be at least 1 GiB, not {size_gib}"
                ))
            })?
            * 1024;
        let datastore = datastore_of(s, datastore)?;
        let version = self.plain_version(s, "create_volume").await?;
        let text = plain::render_datablock(name, size_mib, version)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let id = pools::image_allocate(&s.one, &text, datastore)
            .await
            .map_err(|e| {
                Error::remote(
                    ctx(&s.name, s.one.url(), "create_volume (one.image.allocate)"),
                    e,
                )
            })?;
        self.plain_volume(s, id, "create_volume").await
    }

    /// `destroy_volume` on a plain site (`one.image.delete`; the daemon refuses an image in use).
    pub async fn plain_destroy_volume(&self, site: &str, id: &str) -> Result<()> {
        let s = self.plain_site(site)?;
        let n = Self::volume_ref(s, id)?;
        pools::image_delete(&s.one, n).await.map_err(|e| {
            Error::remote(
                ctx(&s.name, s.one.url(), "destroy_volume (one.image.delete)"),
                e,
            )
        })
    }

    /// `attach_volume` on a plain site: `one.vm.attach` (disk hot-plug), then the volume as it
    /// is now.
    pub async fn plain_attach_volume(
        &self,
        site: &str,
        vm_id: i64,
        id: &str,
        device: Option<&str>,
    ) -> Result<PlainVolume> {
        let s = self.plain_site(site)?;
        let n = Self::volume_ref(s, id)?;
        let text = plain::render_attach(n, device).map_err(|e| Error::invalid(e.to_string()))?;
        pools::vm_attach(&s.one, vm_id, &text).await.map_err(|e| {
            Error::remote(
                ctx(&s.name, s.one.url(), "attach_volume (one.vm.attach)"),
                e,
            )
        })?;
        self.plain_volume(s, n, "attach_volume").await
    }

    /// `detach_volume` on a plain site: `one.vm.detach` of the volume's disk on each VM using
    /// it; the (VM, disk id) detached.
    pub async fn plain_detach_volume(&self, site: &str, id: &str) -> Result<Vec<(i64, i64)>> {
        let s = self.plain_site(site)?;
        let n = Self::volume_ref(s, id)?;
        let volume = self.plain_volume(s, n, "detach_volume").await?;
        if volume.attachments.is_empty() {
            return Err(Error::invalid(format!(
                "volume {id} at site '{}' is not attached to any node",
                s.name
            )));
        }
        let mut detached = Vec::new();
        for (vm, disk) in &volume.attachments {
            pools::vm_detach(&s.one, *vm, disk.disk_id)
                .await
                .map_err(|e| {
                    Error::remote(
                        ctx(&s.name, s.one.url(), "detach_volume (one.vm.detach)"),
                        e,
                    )
                })?;
            detached.push((*vm, disk.disk_id));
        }
        Ok(detached)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_for_their_site_only() {
        assert_eq!(parse_ref("image-3@one", "one").unwrap(), PlainRef::Image(3));
        assert_eq!(
            parse_ref("template-0", "one").unwrap(),
            PlainRef::Template(0)
        );
        assert_eq!(
            parse_ref("volume-12@one", "one").unwrap(),
            PlainRef::Volume(12)
        );
        for bad in [
            "image-3@other",
            "image-",
            "image-x",
            "image--1",
            "3",
            "vol-1",
            "image-1234567890123456789",
            "template-1@",
        ] {
            assert!(parse_ref(bad, "one").is_err(), "{bad}");
        }
    }

    #[test]
    fn node_images_prefer_the_root_disk_over_the_template() {
        use crate::one::vm::Disk;
        let mut vm = VmRecord::default();
        assert_eq!(node_image_id("one", &vm), None);
        vm.template.template_id = Some(4);
        assert_eq!(node_image_id("one", &vm).as_deref(), Some("template-4@one"));
        vm.template.disks = vec![
            Disk {
                disk_id: Some(1),
                image_id: Some(9),
                ..Disk::default()
            },
            Disk {
                disk_id: Some(0),
                image_id: Some(2),
                ..Disk::default()
            },
        ];
        assert_eq!(node_image_id("one", &vm).as_deref(), Some("image-2@one"));
    }

    #[test]
    fn site_kinds() {
        let mut s = SiteSettings {
            name: "x".into(),
            values: Default::default(),
        };
        assert_eq!(SiteKind::of(&s).unwrap(), SiteKind::StratusLab);
        s.values.insert(SITE_TYPE_KEY.into(), " OpenNebula ".into());
        assert_eq!(SiteKind::of(&s).unwrap(), SiteKind::OpenNebula);
        s.values.insert(SITE_TYPE_KEY.into(), "stratuslab".into());
        assert_eq!(SiteKind::of(&s).unwrap(), SiteKind::StratusLab);
        s.values.insert(SITE_TYPE_KEY.into(), "aws".into());
        let e = SiteKind::of(&s).unwrap_err().to_string();
        assert!(e.contains("site_type") && e.contains("aws"), "{e}");
    }
}
