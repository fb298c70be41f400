//! XML-RPC: values, the quick-xml codec, faults. Shared by the compute client and the local cloud.
