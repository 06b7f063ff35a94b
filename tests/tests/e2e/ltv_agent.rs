//! ltv as a process on the embedded stack, on the CDNOW sample's member-states: it fits
//! the population per segment and publishes the fits, values every member with the final
//! fit, signs every record — and `swarm ltv verify` finds exactly the records that were
//! tampered with or signed with another key. A bad intervention outcome, keyed by the
//! ESP's own id, is re-keyed to its member and dead-lettered there.

use crate::common;

use common::record;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apache_avro::AvroSchema;
use loyalty_contracts::{
    InterventionOutcome, InterventionResult, MemberEvent, MemberLtv, ModelParams, Payload, Program,
    Timestamp, topics,
};
use loyalty_runtime::codec::{Encoder, decode, leak};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use ltv::attest::Attestor;

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_every_member_signs_every_record_and_verify_finds_tampering() {
    let stack = common::start_stack().await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let bodies = common::reference_bodies(&common::data("CDNOW_sample.txt"));
    common::produce_member_states(&stack, &bodies).await;
    let program_id = registry
        .register(
            &format!("{}-value", topics::PROGRAMS),
            &Program::get_schema(),
        )
        .await
        .unwrap();
    let programs = Encoder::new(program_id, leak(Program::get_schema())).unwrap();
    let demo = swarm::cdnow::demo_program();
    kafka::produce_all(
        &producer,
        &[record(
            topics::PROGRAMS,
            &demo.program_id,
            programs.encode(&demo).unwrap(),
        )],
    )
    .await
    .unwrap();

    let dir = std::env::temp_dir().join(format!("loyalty-swarm-ltv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("ltv.key");
    let _ = std::fs::remove_file(&key_file);
    let public = swarm::verify::keygen(&key_file).unwrap();
    let key_setting = format!("agent.signing_key_file={}", key_file.display());
    let agent = common::AgentProcess::spawn(
        "ltv",
        &stack,
        &[
            "--set",
            &key_setting,
            "--set",
            "refresh_interval_ms=1000",
            "--set",
            "agent.min_segment_members=100",
            "--set",
            "agent.refit_min_interval_ms=2000",
        ],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    common::wait_caught_up_on(
        &stack,
        "ltv",
        &[topics::MEMBER_STATE],
        Duration::from_secs(180),
    )
    .await;

    // The fitter publishes; members are re-scored with the final fit.
    let deadline = Instant::now() + Duration::from_secs(180);
    let (fits, records) = loop {
        let fits: BTreeMap<String, ModelParams> =
            swarm::demo::decode_latest(&stack.bootstrap_servers, &registry, topics::MODEL_PARAMS)
                .await
                .unwrap();
        let records: BTreeMap<String, MemberLtv> =
            swarm::demo::decode_latest(&stack.bootstrap_servers, &registry, topics::MEMBER_LTV)
                .await
                .unwrap();
        let version = fits.get("all").map(|f| f.version.clone());
        if version.is_some()
            && records.len() == bodies.len()
            && records
                .values()
                .all(|r| Some(&r.attestation.model_version) == version.as_ref())
        {
            break (fits, records);
        }
        assert!(
            Instant::now() < deadline,
            "ltv did not settle: {} fits, {} records; log:\n{}",
            fits.len(),
            records.len(),
            agent.log_tail()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // Fitted on the sample's 2,357 members, T to the newest member-state day.
    let all = &fits["all"];
    assert_eq!(all.bgnbd.sample_size, 2357);
    assert!(all.bgnbd.converged && all.gamma_gamma.is_some());
    assert!(
        fits.keys().any(|s| s.starts_with("tier:")),
        "{:?}",
        fits.keys()
    );
    assert!(
        fits.keys().any(|s| s.starts_with("tenure:")),
        "{:?}",
        fits.keys()
    );
    for (member, r) in &records {
        assert_eq!(r.missing_inputs, ["tier_forecasts", "cohorts"], "{member}");
        assert_eq!(r.decay_curve.len(), 36, "{member}");
        assert_eq!((r.adjustments.len(), r.counterfactuals.len()), (8, 6));
        assert!(
            r.p_alive.is_some_and(|p| (0.0..=1.0).contains(&p)),
            "{member}"
        );
    }
    let metrics = agent.get("/metrics").await.unwrap().1;
    common::promtool_check_metrics(&metrics);
    assert!(metrics.contains("loyalty_swarm_model_fits_total"));

    let key = swarm::verify::public_key(&public).unwrap();
    let clean = swarm::verify::verify_topic(
        &stack.bootstrap_servers,
        &stack.registry_url,
        topics::MEMBER_LTV,
        &key,
    )
    .await
    .unwrap();
    assert!(clean.failures.is_empty(), "{clean}");
    assert!(clean.verified >= bodies.len());

    // One record with a byte changed, one re-signed with another key.
    let (member, bytes) =
        swarm::inspect::latest_values(&stack.bootstrap_servers, topics::MEMBER_LTV)
            .await
            .unwrap()
            .into_iter()
            .next()
            .unwrap();
    let mut tampered = bytes.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x20;
    let mut forged: MemberLtv = decode(&MemberLtv::get_schema(), &bytes[5..]).unwrap();
    forged.adjusted_lifetime_margin_minor += 100_000;
    Attestor::new(ed25519_dalek::SigningKey::from_bytes(&[9; 32]), "forger")
        .unwrap()
        .sign(&mut forged)
        .unwrap();
    let ltv_id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
    let forged_bytes = Encoder::new(ltv_id, leak(MemberLtv::get_schema()))
        .unwrap()
        .encode(&forged)
        .unwrap();
    kafka::produce_all(
        &producer,
        &[
            record(topics::MEMBER_LTV, &member, tampered),
            record(topics::MEMBER_LTV, &member, forged_bytes),
        ],
    )
    .await
    .unwrap();
    let report = swarm::verify::verify_topic(
        &stack.bootstrap_servers,
        &stack.registry_url,
        topics::MEMBER_LTV,
        &key,
    )
    .await
    .unwrap();
    assert_eq!(report.failures.len(), 2, "{report}");
    assert!(report.failures.iter().all(|f| f.key == member));
    assert!(
        report.failures[1]
            .problems
            .iter()
            .any(|p| p.contains("signed with key")),
        "{report}"
    );
    assert_eq!(report.verified, clean.verified);

    // An outcome of an intervention type the swarm does not know goes to the DLQ. The ESP
    // keys it by its own contact id, so it is re-keyed to the member first, and the DLQ
    // names the position it entered at.
    let events = common::member_event_encoder(&stack).await;
    let bad = MemberEvent {
        event_id: "outcome-1".into(),
        member_id: member.clone(),
        brand_id: "cdnow".into(),
        occurred_at: Timestamp(0),
        source: "esp".into(),
        source_member_id: Some("esp-contact-9".into()),
        payload: Payload::InterventionOutcome(InterventionOutcome {
            intervention_id: "i-1".into(),
            intervention_type: "coupon_blast".into(),
            result: InterventionResult::Delivered,
            value_minor: None,
            holdout: None,
        }),
    };
    kafka::produce_all(
        &producer,
        &[record(
            topics::MEMBER_EVENTS,
            "esp-contact-9",
            events.encode(&bad).unwrap(),
        )],
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dlq = swarm::inspect::all_records(&stack.bootstrap_servers, "ltv.dlq")
            .await
            .unwrap_or_default();
        if let Some((_, headers)) = dlq.first() {
            let reason = headers
                .iter()
                .find(|(k, _)| k.contains("reason"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            assert!(reason.contains("coupon_blast"), "{headers:?}");
            assert!(
                headers.contains(&("dlq.source.topic".into(), topics::MEMBER_EVENTS.into())),
                "{headers:?}"
            );
            let forwarded: i64 =
                swarm::inspect::watermarks(&stack.bootstrap_servers, "ltv.rekey-repartition")
                    .unwrap()
                    .values()
                    .map(|(_, high)| high)
                    .sum();
            assert_eq!(forwarded, 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DLQ record; log:\n{}",
            agent.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
