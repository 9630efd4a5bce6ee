//! Ctrl-C ends a run early but still prints its report (a 10-minute run interrupted after 5
//! should not lose 5 minutes of measurements); a second Ctrl-C quits at once.

use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Listens for Ctrl-C from now on.
    pub fn on_ctrl_c() -> Stop {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\ninterrupted: finishing the run and reporting (Ctrl-C again quits now)"
                );
                let _ = tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
            // Without a signal handler the run simply goes on; keep the sender alive.
            std::future::pending::<()>().await;
        });
        Stop(rx)
    }

    pub fn stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps until `t`; `false` when interrupted first.
    pub async fn sleep_until(&self, t: Instant) -> bool {
        let mut rx = self.0.clone();
        if *rx.borrow() {
            return false;
        }
        let interrupted = tokio::select! {
            _ = tokio::time::sleep_until(t) => return true,
            r = rx.wait_for(|stop| *stop) => r.is_ok(),
        };
        if interrupted {
            return false;
        }
        // The sender is gone (no signal handling here): just sleep.
        tokio::time::sleep_until(t).await;
        true
    }
}
