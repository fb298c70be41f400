//! Virtual networks and their IP leases, and leasing a NIC at instantiation.

use super::*;

/// A virtual network: `name` leases `count` consecutive addresses from `first`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    pub first: Ipv4Addr,
    pub count: u32,
    pub bridge: String,
}

#[derive(Debug)]
pub(super) struct Network {
    pub(super) name: String,
    pub(super) first: u32,
    pub(super) count: u32,
    pub(super) bridge: String,
    pub(super) used: BTreeSet<u32>,
    pub(super) next: u32,
}

impl Network {
    /// Leases `wanted` (if free and in range) or the next free address.
    pub(super) fn lease(&mut self, wanted: Option<Ipv4Addr>) -> Option<u32> {
        let offset = match wanted {
            Some(ip) => {
                let offset = u32::from(ip).checked_sub(self.first)?;
                (offset < self.count && !self.used.contains(&offset)).then_some(offset)?
            }
            None => {
                if self.used.len() as u64 >= u64::from(self.count) {
                    return None;
                }
                let mut offset = self.next;
                while self.used.contains(&offset) {
                    offset = (offset + 1) % self.count;
                }
                self.next = (offset + 1) % self.count;
                offset
            }
        };
        self.used.insert(offset);
        Some(offset)
    }
}

impl ComputeState {
    pub(super) fn lease_nic(
        &mut self,
        user: &User,
        nic: &mut BTreeMap<String, String>,
        leases: &mut Vec<(usize, u32)>,
    ) -> Result<(), String> {
        let index = if let Some(name) = nic.get("NETWORK") {
            let owner = match (nic.get("NETWORK_UID"), nic.get("NETWORK_UNAME")) {
                (Some(uid), _) => uid
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| "Cannot get user in NETWORK_UID".to_owned())?,
                (None, Some(uname)) => {
                    self.users
                        .iter()
                        .find(|u| &u.name == uname)
                        .map(|u| u.id)
                        .ok_or_else(|| "User set in NETWORK_UNAME does not exist".to_owned())?
                }
                (None, None) => user.id,
            };
            // Every network belongs to oneadmin (uid 0).
            self.networks
                .iter()
                .position(|n| owner == 0 && &n.name == name)
                .ok_or_else(|| {
                    format!(
                        "User {owner} does not own a network with name: {name} . Set NETWORK_UNAME or NETWORK_UID of owner in NIC."
                    )
                })?
        } else if let Some(id) = nic.get("NETWORK_ID") {
            id.trim()
                .parse::<usize>()
                .ok()
                .filter(|i| *i < self.networks.len())
                .ok_or_else(|| format!("Virtual network with ID: {id} does not exist"))?
        } else {
            return Ok(());
        };
        let wanted = match nic.get("IP") {
            Some(ip) => Some(
                ip.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|_| "Cannot get IP/MAC lease from virtual network.".to_owned())?,
            ),
            None => None,
        };
        let network = &mut self.networks[index];
        let offset = network
            .lease(wanted)
            .ok_or_else(|| "Cannot get IP/MAC lease from virtual network.".to_owned())?;
        leases.push((index, offset));
        let ip = Ipv4Addr::from(network.first + offset);
        let o = ip.octets();
        nic.insert("BRIDGE".into(), network.bridge.clone());
        nic.insert("IP".into(), ip.to_string());
        nic.insert(
            "MAC".into(),
            format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
        );
        nic.insert("NETWORK".into(), network.name.clone());
        nic.insert("NETWORK_ID".into(), index.to_string());
        nic.insert("VLAN".into(), "NO".into());
        Ok(())
    }
}
