//! Leader election against a mocked API server: the Lease is created when absent, respected while its
//! holder renews it, taken over only after it stayed unchanged for a whole duration on our clock, written
//! only with the resourceVersion that was read, and released on shutdown.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::{Value, json};

use crate::fixtures::{self, conflict, not_found};
use crate::leader::LeaderLease;

const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/kafka-mirror/leases/kafka-mirror-operator";
const DURATION: Duration = Duration::from_secs(15);

fn lease(client: kube::Client) -> LeaderLease {
    LeaderLease::new(
        Api::<Lease>::namespaced(client, "kafka-mirror"),
        "kafka-mirror-operator",
        "operator-a",
        DURATION,
    )
}

fn held_by(holder: &str, resource_version: &str, renew: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "kafka-mirror-operator", "namespace": "kafka-mirror", "resourceVersion": resource_version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew,
            "acquireTime": "2026-11-21T08:00:00.000000Z", "leaseTransitions": 4}
    })
}

#[tokio::test]
async fn an_absent_lease_is_created_with_this_replica_as_holder() {
    let (client, server) = fixtures::client();
    let lock = lease(client);
    let (acquired, created) = server
        .run(
            lock.try_acquire_or_renew(Instant::now()),
            |mut server| async move {
                server
                    .expect("GET", LEASE, |_| {
                        not_found("leases", "kafka-mirror-operator")
                    })
                    .await;
                let created = server
                    .expect(
                        "POST",
                        "/apis/coordination.k8s.io/v1/namespaces/kafka-mirror/leases",
                        |call| (201, call.body.clone()),
                    )
                    .await;
                (server, created.body)
            },
        )
        .await;
    assert!(acquired.unwrap());
    assert_eq!(created["spec"]["holderIdentity"], "operator-a");
    assert_eq!(created["spec"]["leaseDurationSeconds"], 15);
    assert_eq!(created["spec"]["leaseTransitions"], 0);
}

#[tokio::test]
async fn a_renewed_lease_is_respected_and_a_stale_one_taken_over_with_its_resource_version() {
    let (client, server) = fixtures::client();
    let lock = lease(client);
    let start = Instant::now();
    let (results, replaced) = server
        .run(
            async {
                let first = lock.try_acquire_or_renew(start).await.unwrap();
                // The holder renewed (new resourceVersion): the clock starts again.
                let renewed = lock.try_acquire_or_renew(start + DURATION).await.unwrap();
                // Unchanged, but not yet for a whole duration since we first saw it like this.
                let early = lock
                    .try_acquire_or_renew(start + DURATION * 2 - Duration::from_secs(1))
                    .await
                    .unwrap();
                // Unchanged for longer than a duration: taken over.
                let late = lock
                    .try_acquire_or_renew(start + DURATION * 2 + Duration::from_secs(1))
                    .await
                    .unwrap();
                (first, renewed, early, late)
            },
            |mut server| async move {
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-b", "100", "2026-11-21T08:00:00.000000Z"),
                        )
                    })
                    .await;
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-b", "101", "2026-11-21T08:00:05.000000Z"),
                        )
                    })
                    .await;
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-b", "101", "2026-11-21T08:00:05.000000Z"),
                        )
                    })
                    .await;
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-b", "101", "2026-11-21T08:00:05.000000Z"),
                        )
                    })
                    .await;
                let replaced = server
                    .expect("PUT", LEASE, |call| (200, call.body.clone()))
                    .await;
                (server, replaced.body)
            },
        )
        .await;
    assert_eq!(results, (false, false, false, true));
    assert_eq!(
        replaced["metadata"]["resourceVersion"], "101",
        "the write is guarded by what was read"
    );
    assert_eq!(replaced["spec"]["holderIdentity"], "operator-a");
    assert_eq!(replaced["spec"]["leaseTransitions"], 5);
    assert_ne!(
        replaced["spec"]["acquireTime"],
        "2026-11-21T08:00:00.000000Z"
    );
}

#[tokio::test]
async fn losing_the_race_for_a_lease_is_not_winning_it() {
    let (client, server) = fixtures::client();
    let lock = lease(client);
    let (acquired, ()) = server
        .run(
            lock.try_acquire_or_renew(Instant::now()),
            |mut server| async move {
                // Released by its last holder (no holder): free to take, but another replica writes first.
                server
                    .expect("GET", LEASE, |_| {
                        (200, held_by("", "7", "2026-11-21T08:00:00.000000Z"))
                    })
                    .await;
                server
                    .expect("PUT", LEASE, |_| {
                        conflict("leases", "kafka-mirror-operator")
                    })
                    .await;
                (server, ())
            },
        )
        .await;
    assert!(!acquired.unwrap());
}

#[tokio::test]
async fn the_holder_renews_keeping_its_acquire_time_and_releases_on_shutdown() {
    let (client, server) = fixtures::client();
    let lock = lease(client);
    let (results, (renewed, released)) = server
        .run(
            async {
                let renewed = lock.try_acquire_or_renew(Instant::now()).await.unwrap();
                lock.release().await.unwrap();
                renewed
            },
            |mut server| async move {
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-a", "8", "2026-11-21T08:00:00.000000Z"),
                        )
                    })
                    .await;
                let renewed = server
                    .expect("PUT", LEASE, |call| (200, call.body.clone()))
                    .await
                    .body;
                server
                    .expect("GET", LEASE, |_| {
                        (
                            200,
                            held_by("operator-a", "9", "2026-11-21T08:00:05.000000Z"),
                        )
                    })
                    .await;
                let released = server
                    .expect("PUT", LEASE, |call| (200, call.body.clone()))
                    .await
                    .body;
                (server, (renewed, released))
            },
        )
        .await;
    assert!(results);
    assert_eq!(
        renewed["spec"]["acquireTime"],
        "2026-11-21T08:00:00.000000Z"
    );
    assert_eq!(renewed["spec"]["leaseTransitions"], 4);
    assert_ne!(renewed["spec"]["renewTime"], "2026-11-21T08:00:00.000000Z");
    assert!(
        released["spec"]["holderIdentity"].is_null(),
        "released: {released}"
    );
    assert_eq!(released["metadata"]["resourceVersion"], "9");
}
