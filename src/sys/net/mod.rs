//! Addresses over netlink and their announcements: gratuitous ARP, unsolicited NA, duplicate probes (float-ip).
