//! An SQS claim (ReceiveMessage) as both stores run it: the same rules over each dialect's
//! statements ([`ReceiveSql`]). Messages received `max_receive_count` times move to the
//! dead-letter queue instead of being returned, and the places they free in the batch are
//! looked for again (a bounded number of times).

use kindling_model::messaging::{NewMessage, StoredMessage};

use crate::Result;
use crate::messaging::{ReceiveOp, Received};

/// Rounds of looking again for messages after moves to the dead-letter queue.
const ROUNDS: usize = 4;

/// The statements of one claim, in one transaction of the store's dialect.
pub(crate) trait ReceiveSql {
    /// Up to `want` receivable messages of `r`'s queue, in receive order, locked for the claim.
    fn candidates(&mut self, r: &ReceiveOp, want: usize) -> Result<Vec<StoredMessage>>;
    /// Stores `moved` in queue `dlq_queue_id` and deletes message `seq` from its queue.
    fn move_to_dead_letter(
        &mut self,
        seq: i64,
        dlq_queue_id: i64,
        moved: &NewMessage,
    ) -> Result<()>;
    /// Records a receive of message `seq`: one more receive, this receipt, invisible until
    /// `visible_ms`, first received at `first_receive_ms`.
    fn mark_received(
        &mut self,
        seq: i64,
        receipt: &str,
        visible_ms: i64,
        first_receive_ms: i64,
    ) -> Result<()>;
    /// The earliest time after `now_ms` a message of the queue becomes visible.
    fn next_visible_ms(&mut self, queue_id: i64, now_ms: i64) -> Result<Option<i64>>;
}

/// Claims up to `r.max` messages.
pub(crate) fn receive(db: &mut impl ReceiveSql, r: &ReceiveOp) -> Result<Received> {
    let mut got = Received::default();
    for _ in 0..ROUNDS {
        let want = r.max.saturating_sub(got.messages.len());
        if want == 0 {
            break;
        }
        let found = db.candidates(r, want)?;
        let exhausted = found.len() < want;
        let mut moved_now = 0;
        for mut m in found {
            if let Some(dlq) = &r.redrive
                && m.message.receive_count >= dlq.max_receive_count
            {
                let mut moved = m.message;
                moved.dead_letter_source_arn = Some(dlq.source_arn.clone());
                moved.receive_count = 0;
                moved.first_receive_ms = None;
                moved.visible_ms = r.now_ms;
                moved.dedup_key = None;
                db.move_to_dead_letter(m.seq, dlq.queue_id, &moved)?;
                moved_now += 1;
                continue;
            }
            let first = m.message.first_receive_ms.unwrap_or(r.now_ms);
            db.mark_received(m.seq, &r.receipt, r.now_ms + r.visibility_ms, first)?;
            m.message.receive_count += 1;
            m.message.first_receive_ms = Some(first);
            m.receipt = r.receipt.clone();
            got.messages.push(m);
        }
        got.moved += moved_now;
        if moved_now == 0 || exhausted {
            break;
        }
    }
    if got.messages.is_empty() {
        got.next_visible_ms = db.next_visible_ms(r.queue_id, r.now_ms)?;
    }
    Ok(got)
}
