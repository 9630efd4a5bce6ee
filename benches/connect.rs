//! The remote-access relay, black box: the release `fleetbox` binary on 127.0.0.1, a scripted
//! device and a scripted user on websockets (plain HTTP, so TLS cost is left out).
//! Measures terminal round trips (user → relay → device → relay → user) and port-forward
//! throughput each way in 4 KiB frames, the size mender-connect forwards in.
//! Run: `cargo bench --bench connect`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::connect::{msg, rig_with, wait_status, Msg, Ws, SHELL};
use common::Server;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

const PORT_FORWARD: u16 = 3;
const ROUND_TRIPS: usize = 5_000;
const FRAME: usize = 4096;
const VOLUME: usize = 256 * 1024 * 1024;

fn encode(m: &Msg) -> Vec<u8> {
    rmp_serde::to_vec_named(m).unwrap()
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return b.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(Server::builder().no_https().start());
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();

    rt.block_on(async {
        // Terminal: the device echoes every shell message back as output.
        user.send(Message::Binary(encode(&msg(SHELL, "new", "", b"")).into()))
            .await
            .unwrap();
        let new: Msg = rmp_serde::from_slice(&next_binary(&mut dev).await).unwrap();
        let sid = new.hdr.sid.clone();
        let mut rtts = Vec::with_capacity(ROUND_TRIPS);
        for i in 0..ROUND_TRIPS {
            let input = encode(&msg(SHELL, "shell", &sid, format!("echo {i}\n").as_bytes()));
            let t = Instant::now();
            user.send(Message::Binary(input.into())).await.unwrap();
            let got: Msg = rmp_serde::from_slice(&next_binary(&mut dev).await).unwrap();
            let echo = encode(&msg(SHELL, "shell", &sid, &got.body));
            dev.send(Message::Binary(echo.into())).await.unwrap();
            next_binary(&mut user).await;
            rtts.push(t.elapsed());
        }
        rtts.sort();
        let mean = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        println!(
            "terminal round trip ({ROUND_TRIPS} in a row): mean {:?}, p50 {:?}, p99 {:?}, max {:?}",
            mean,
            percentile(&rtts, 0.5),
            percentile(&rtts, 0.99),
            rtts[rtts.len() - 1]
        );

        // Port forward, user → device: the device counts while the user sends.
        let frame = encode(&msg(PORT_FORWARD, "forward", &sid, &vec![7u8; FRAME]));
        let frames = VOLUME / FRAME;
        let t = Instant::now();
        let (mut user_tx, mut user_rx) = user.split();
        let (mut dev_tx, mut dev_rx) = dev.split();
        let counting = tokio::spawn(async move {
            let mut bytes = 0usize;
            let mut n = 0;
            while n < frames {
                match dev_rx.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        bytes += b.len();
                        n += 1;
                    }
                    Some(Ok(_)) => {}
                    other => panic!("device socket ended: {other:?}"),
                }
            }
            (bytes, dev_rx)
        });
        for _ in 0..frames {
            user_tx
                .send(Message::Binary(frame.clone().into()))
                .await
                .unwrap();
        }
        let (_, mut dev_rx) = counting.await.unwrap();
        let up = t.elapsed();
        println!(
            "port forward user → device: {} MiB in {:.2?} = {:.0} MiB/s ({:.0} frames/s)",
            VOLUME >> 20,
            up,
            (VOLUME >> 20) as f64 / up.as_secs_f64(),
            frames as f64 / up.as_secs_f64()
        );

        // Port forward, device → user.
        let t = Instant::now();
        let counting = tokio::spawn(async move {
            let mut n = 0;
            while n < frames {
                match user_rx.next().await {
                    Some(Ok(Message::Binary(_))) => n += 1,
                    Some(Ok(_)) => {}
                    other => panic!("user socket ended: {other:?}"),
                }
            }
        });
        for _ in 0..frames {
            dev_tx
                .send(Message::Binary(frame.clone().into()))
                .await
                .unwrap();
        }
        counting.await.unwrap();
        let down = t.elapsed();
        println!(
            "port forward device → user: {} MiB in {:.2?} = {:.0} MiB/s ({:.0} frames/s)",
            VOLUME >> 20,
            down,
            (VOLUME >> 20) as f64 / down.as_secs_f64(),
            frames as f64 / down.as_secs_f64()
        );
        // Keep the device's read side alive until the end (it answers pings).
        let _ = tokio::time::timeout(Duration::from_millis(10), dev_rx.next()).await;
    });
}
