//! Hostile and broken input: a clear ledger entry, a closed connection, and a server that keeps
//! serving everyone else.

use iso8583::Mti;
use simulator::{Action, Faults};
use testkit::cards::*;
use testkit::iso::*;
use testkit::network::Sim;
use tokio::io::AsyncWriteExt;

async fn assert_still_serving(sim: &Sim) {
    let mut client = sim.client().await;
    assert_eq!(
        code(
            &client
                .call(&payment(Mti::AUTH_REQUEST, VISA_CHALLENGE, 100, &[]))
                .await
        ),
        "00"
    );
}

fn malformed_reason(sim: &Sim) -> String {
    let ledger = sim.handle.ledger();
    match &ledger.entries.last().unwrap().action {
        Action::Malformed { reason } => reason.clone(),
        other => panic!("expected a malformed entry, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversize_length_header_closes_the_connection_with_a_clear_reason() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    client.send_raw(&[0xFF, 0xFF, b'0', b'1']).await;
    assert!(client.recv().await.is_none());
    assert!(
        malformed_reason(&sim).contains("65535"),
        "{}",
        malformed_reason(&sim)
    );
    assert_still_serving(&sim).await;
}

#[tokio::test]
async fn an_empty_frame_and_an_undecodable_body_close_the_connection() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    client.send_raw(&[0, 0]).await;
    assert!(client.recv().await.is_none());
    assert!(malformed_reason(&sim).contains("empty"));

    let mut client = sim.client().await;
    client
        .send_raw(&frame(b"01X0\x00\x00\x00\x00\x00\x00\x00\x00"))
        .await;
    assert!(client.recv().await.is_none());
    assert!(
        malformed_reason(&sim).contains("MTI"),
        "{}",
        malformed_reason(&sim)
    );

    let mut client = sim.client().await;
    // A bitmap that announces DE 2 and then ends.
    client
        .send_raw(&frame(b"0100\x40\x00\x00\x00\x00\x00\x00\x00"))
        .await;
    assert!(client.recv().await.is_none());
    assert!(
        malformed_reason(&sim).contains("DE 2"),
        "{}",
        malformed_reason(&sim)
    );
    assert_still_serving(&sim).await;
}

#[tokio::test]
async fn a_response_mti_sent_to_the_network_is_recorded_and_ignored() {
    let sim = Sim::start(Faults::default()).await;
    let mut client = sim.client().await;
    let mut b = iso8583::MessageBuilder::new(Mti::AUTH_RESPONSE);
    b.field(7, now_de7().as_bytes())
        .stan(next_stan())
        .field(39, b"00");
    client.send(&b.build().unwrap()).await;
    assert_eq!(client.call(&echo()).await.mti(), Mti::NETWORK_RESPONSE);
    let ledger = sim.handle.ledger();
    assert!(
        matches!(&ledger.entries[0].action, Action::Rejected { reason } if reason.contains("0110"))
    );
    assert_eq!(ledger.entries[0].delivery, simulator::Delivery::None);
}

#[tokio::test]
async fn plain_tcp_and_clients_without_a_certificate_are_refused() {
    let sim = Sim::start(Faults::default()).await;
    let mut plain = tokio::net::TcpStream::connect(sim.handle.iso_addr)
        .await
        .unwrap();
    plain.write_all(&frame(b"0800")).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        testkit::GUARD,
        tokio::io::AsyncReadExt::read(&mut plain, &mut buf),
    )
    .await
    .unwrap();
    // A TLS alert or a close, never an ISO response.
    assert!(!matches!(read, Ok(n) if n >= 4 && &buf[2..6] == b"0810"));

    let other = simulator::DevPki::generate();
    let foreign = simulator::DevPki {
        ca_cert_pem: sim.pki.ca_cert_pem.clone(),
        ..other
    };
    let result = async {
        let mut client = IsoClient::connect(sim.handle.iso_addr, &foreign).await?;
        client.send(&echo()).await;
        Ok::<_, std::io::Error>(client.recv().await)
    }
    .await;
    assert!(
        matches!(result, Err(_) | Ok(None)),
        "a client certificate from another CA must be refused"
    );
    assert_still_serving(&sim).await;
}

#[tokio::test]
async fn random_bodies_never_take_the_server_down() {
    use rand::{Rng, SeedableRng};
    let sim = Sim::start(Faults::default()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8583);
    for round in 0..40 {
        let mut body: Vec<u8> = (0..rng.gen_range(1..300)).map(|_| rng.r#gen()).collect();
        if round % 2 == 0 {
            // Get past the MTI so the bitmap and field decoders see the noise too.
            body.splice(0..body.len().min(4), *b"0100");
        }
        let mut client = sim.client().await;
        client.send_raw(&frame(&body)).await;
        // Either a close (undecodable) or, by chance, an answer (e.g. 30): never a hang.
        let _ = client.recv_frame().await;
    }
    assert_still_serving(&sim).await;
    let ledger = sim.handle.ledger();
    assert!(ledger.entries.len() >= 40);
}

#[tokio::test]
async fn a_stop_ends_a_connection_still_in_its_tls_handshake() {
    let pki = simulator::DevPki::generate();
    let mut config = simulator::SimConfig::with_pki(&pki);
    // Far longer than the bound below: only the stop can end the silent handshake in time.
    config.handshake_timeout = std::time::Duration::from_secs(600);
    let sim = Sim::start_with(config, pki).await;
    // A peer that connects and never sends its ClientHello...
    let _silent = tokio::net::TcpStream::connect(sim.handle.iso_addr)
        .await
        .unwrap();
    // ...accepted before this one, which the single accept loop takes after it.
    assert_still_serving(&sim).await;
    tokio::time::timeout(testkit::GUARD, sim.handle.shutdown())
        .await
        .expect("the stop ends the handshake instead of waiting for it");
}
