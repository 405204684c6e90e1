//! A ClusterIP Service in front of the workers' `/metrics`, for Prometheus (or a ServiceMonitor) to scrape.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_mirror_crds::worker_pod::HTTP_PORT;

use crate::labels::selector;
use crate::validate::MirrorIdentity;

pub(super) fn build(owner: &MirrorIdentity) -> Service {
    Service {
        metadata: owner.metadata(&owner.names.metrics_service),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector(&owner.name)),
            ports: Some(vec![ServicePort {
                name: Some("http-metrics".to_string()),
                port: i32::from(HTTP_PORT),
                target_port: Some(IntOrString::String("http".to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
