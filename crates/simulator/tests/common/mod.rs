//! A minimal ISO 8583 client over mutual TLS and request builders, enough to drive the simulator
//! the way an acquirer would. Each test binary uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use iso8583::{Amount, FrameCodec, Message, MessageBuilder, Mti, Rrn, Stan};
use simulator::{DevPki, Faults, SimConfig, Simulator, SimulatorHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

/// Bound on every wait in these tests: a guard against hanging, never a synchronisation.
pub const GUARD: Duration = Duration::from_secs(10);

pub const VISA: &str = "4111111111111111";
pub const MASTERCARD: &str = "5555555555554444";
pub const MIR: &str = "2200000000000004";
pub const ACQUIRER: &[u8] = b"123456";

pub struct Sim {
    pub handle: SimulatorHandle,
    pub pki: DevPki,
}

pub async fn start(faults: Faults) -> Sim {
    let pki = DevPki::generate();
    let mut config = SimConfig::with_pki(&pki);
    config.faults = faults;
    start_with(config, pki).await
}

pub async fn start_with(config: SimConfig, pki: DevPki) -> Sim {
    let iso = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acs = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = Simulator::start(config, iso, acs).await.unwrap();
    Sim { handle, pki }
}

impl Sim {
    pub async fn client(&self) -> IsoClient {
        IsoClient::connect(self.handle.iso_addr, &self.pki)
            .await
            .unwrap()
    }
}

/// One TLS connection speaking length-prefixed ISO 8583.
pub struct IsoClient {
    pub framed: Framed<TlsStream<TcpStream>, FrameCodec>,
}

impl IsoClient {
    pub async fn connect(addr: SocketAddr, pki: &DevPki) -> std::io::Result<IsoClient> {
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(pki.client_config().unwrap())
            .connect(name, tcp)
            .await?;
        Ok(IsoClient {
            framed: Framed::new(tls, FrameCodec),
        })
    }

    pub async fn send(&mut self, msg: &Message) {
        self.framed.send(msg).await.unwrap();
    }

    /// Raw bytes straight onto the TLS stream (for malformed frames).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// The next frame, decoded; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Message> {
        let frame = tokio::time::timeout(GUARD, self.framed.next())
            .await
            .expect("no frame in time")?;
        Some(Message::decode(frame.ok()?).expect("server sent an undecodable message"))
    }

    /// The next raw frame body (for checking a deliberately malformed response).
    pub async fn recv_frame(&mut self) -> Option<Result<Bytes, iso8583::FrameError>> {
        tokio::time::timeout(GUARD, self.framed.next())
            .await
            .expect("no frame in time")
    }

    pub async fn call(&mut self, msg: &Message) -> Message {
        self.send(msg).await;
        let response = self
            .recv()
            .await
            .expect("connection closed instead of a response");
        assert_eq!(response.stan(), msg.stan(), "response to another request");
        response
    }
}

static STAN: AtomicU32 = AtomicU32::new(1);

pub fn next_stan() -> Stan {
    Stan::new(STAN.fetch_add(1, Ordering::Relaxed) % Stan::MAX + 1).unwrap()
}

/// DE 7 of the current moment.
pub fn now_de7() -> [u8; 10] {
    let now = time::OffsetDateTime::now_utc();
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}",
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    s.into_bytes().try_into().unwrap()
}

/// A 0100/0200 with every mandatory field; `de48` as (tag, value) pairs.
pub fn payment(mti: Mti, pan: &str, amount: u64, de48: &[(u8, &[u8])]) -> Message {
    payment_with(mti, b"000000", pan, amount, b"3012", de48)
}

pub fn payment_with(
    mti: Mti,
    processing: &[u8],
    pan: &str,
    amount: u64,
    expiry: &[u8],
    de48: &[(u8, &[u8])],
) -> Message {
    let stan = next_stan();
    let mut b = MessageBuilder::new(mti);
    b.field(2, pan.as_bytes())
        .field(3, processing)
        .amount(Amount(amount))
        .field(7, &now_de7())
        .stan(stan)
        .field(12, b"120000")
        .field(13, b"1123")
        .field(14, expiry)
        .field(22, b"010")
        .field(25, b"59")
        .field(32, ACQUIRER)
        .rrn(Rrn::from_number(u64::from(stan.value())).unwrap())
        .field(41, b"TERM0001")
        .field(42, b"MERCHANT0000001")
        .field(49, b"643");
    if !de48.is_empty() {
        b.de48(de48);
    }
    b.build().unwrap()
}

/// DE 90 pointing at `original`.
pub fn original_data(original: &Message) -> Vec<u8> {
    let mut de90 = Vec::with_capacity(42);
    de90.extend_from_slice(&original.mti().to_ascii());
    de90.extend_from_slice(original.field(11).unwrap());
    de90.extend_from_slice(original.field(7).unwrap());
    de90.extend_from_slice(format!("{:0>11}", std::str::from_utf8(ACQUIRER).unwrap()).as_bytes());
    de90.extend_from_slice(&[b'0'; 11]);
    de90
}

/// A reversal (0400, 0420 or 0421) or completion (0220) of `original` for `amount`.
pub fn follow_up(mti: Mti, original: &Message, amount: u64, replacement: Option<u64>) -> Message {
    let stan = next_stan();
    let mut b = MessageBuilder::new(mti);
    b.field(2, original.field(2).unwrap())
        .field(3, original.field(3).unwrap())
        .amount(Amount(amount))
        .field(7, &now_de7())
        .stan(stan)
        .field(14, b"3012")
        .field(32, ACQUIRER)
        .rrn(original.rrn().unwrap())
        .field(41, b"TERM0001")
        .field(42, b"MERCHANT0000001")
        .field(49, b"643")
        .field(90, &original_data(original));
    if let Some(r) = replacement {
        let mut de95 = format!("{r:012}").into_bytes();
        de95.resize(42, b'0');
        b.field(95, &de95);
    }
    b.build().unwrap()
}

pub fn reversal(original: &Message) -> Message {
    follow_up(
        Mti::REVERSAL_REQUEST,
        original,
        original.amount().unwrap().0,
        None,
    )
}

pub fn echo() -> Message {
    let mut b = MessageBuilder::new(Mti::NETWORK_REQUEST);
    b.field(7, &now_de7()).stan(next_stan()).field(70, b"301");
    b.build().unwrap()
}

pub fn code(msg: &Message) -> String {
    msg.response_code().unwrap().as_str().to_owned()
}

pub fn frame(body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}
