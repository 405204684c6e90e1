//! The workers' own ServiceAccount: they never call the Kubernetes API, so it has no token and no role.

use k8s_openapi::api::core::v1::ServiceAccount;

use crate::validate::MirrorIdentity;

pub(super) fn build(owner: &MirrorIdentity) -> ServiceAccount {
    ServiceAccount {
        metadata: owner.metadata(&owner.names.workload),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
