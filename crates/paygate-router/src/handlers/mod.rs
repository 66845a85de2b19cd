//! Dispatch of stored events to the handlers that keep the domain tables right.
//!
//! Policy: every handler is idempotent and tolerates any order of arrival (see `lifecycle`); an
//! event type Paygate does not act on is `Ignored` (stored, acknowledged, visible). Errors say
//! whether retrying can help: a payload without the fields a handler needs will not improve.

pub mod accounts;
pub mod billing;
pub mod checkout;
pub mod context;
pub mod orders;
pub mod payments;
pub mod refunds;
pub mod thin;

pub use context::{
    EventMeta, HandlerCtx, HandlerError, HandlerResult, Outcome, TEST_EVENT_ID_PREFIX,
};

use paygate_wire::{EventFamily, EventType};
use sea_orm::{ConnectionTrait, TransactionTrait};

/// Whether an event's handler calls Stripe, and so must not run inside a shared transaction
/// (it would hold the database while waiting on the network).
pub fn calls_stripe(event_type: &str) -> bool {
    // A thin event is fetched from Stripe (see `thin`).
    EventType::parse(event_type).is_some_and(EventType::calls_stripe)
        || paygate_wire::ThinEventType::is_thin_name(event_type)
}

/// Routes an event to its handler by type: the one `match` over [`EventType`], so the compiler
/// lists every handled type here.
pub async fn dispatch<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    use EventType as T;
    let Some(kind) = ctx.event.kind else {
        return Ok(Outcome::Ignored);
    };
    match kind {
        T::CheckoutSessionCompleted
        | T::CheckoutSessionAsyncPaymentSucceeded
        | T::CheckoutSessionAsyncPaymentFailed
        | T::CheckoutSessionExpired => checkout::handle(ctx, kind).await,
        T::PaymentIntentCreated
        | T::PaymentIntentProcessing
        | T::PaymentIntentRequiresAction
        | T::PaymentIntentAmountCapturableUpdated
        | T::PaymentIntentSucceeded
        | T::PaymentIntentPaymentFailed
        | T::PaymentIntentCanceled => payments::payment_intent(ctx).await,
        T::ChargePending | T::ChargeSucceeded | T::ChargeFailed | T::ChargeRefunded => {
            payments::charge(ctx, kind).await
        }
        T::ChargeDisputeCreated
        | T::ChargeDisputeUpdated
        | T::ChargeDisputeClosed
        | T::ChargeDisputeFundsWithdrawn
        | T::ChargeDisputeFundsReinstated => payments::dispute(ctx, kind).await,
        T::SourceChargeable | T::SourceFailed | T::SourceCanceled => {
            payments::source(ctx, kind).await
        }
        T::AccountUpdated => accounts::account(ctx).await,
        T::PaymentMethodAutomaticallyUpdated => accounts::payment_method(ctx).await,
        T::IssuingCardUpdated => accounts::issuing(ctx, "card").await,
        T::IssuingCardholderUpdated => accounts::issuing(ctx, "cardholder").await,
        T::RefundCreated | T::RefundUpdated | T::RefundFailed => refunds::refund(ctx, kind).await,
        T::RadarEarlyFraudWarningCreated | T::RadarEarlyFraudWarningUpdated => {
            refunds::early_fraud_warning(ctx).await
        }
        T::CustomerCreated | T::CustomerUpdated | T::CustomerDeleted => {
            billing::customer(ctx, kind).await
        }
        T::CustomerSubscriptionCreated
        | T::CustomerSubscriptionUpdated
        | T::CustomerSubscriptionDeleted
        | T::CustomerSubscriptionPaused
        | T::CustomerSubscriptionResumed
        | T::CustomerSubscriptionTrialWillEnd => billing::subscription(ctx, kind).await,
        T::InvoiceCreated
        | T::InvoiceFinalized
        | T::InvoicePaid
        | T::InvoicePaymentSucceeded
        | T::InvoicePaymentFailed
        | T::InvoicePaymentActionRequired
        | T::InvoiceUpcoming
        | T::InvoiceVoided
        | T::InvoiceMarkedUncollectible => billing::invoice(ctx, kind).await,
    }
}

/// Whether an event's handler is [`payments::payment_intent`].
fn is_payment_intent(event: &EventMeta) -> bool {
    event
        .kind
        .is_some_and(|k| k.family() == EventFamily::PaymentIntent)
}

/// Routes the events of a batch (one unit of work) to their handlers: the payment intents
/// together ([`payments::payment_intents`]: one statement for many), then every other event
/// one by one, in order. Stops at the first failure: that event and the ones not run yet get
/// an error.
pub async fn dispatch_many<C: ConnectionTrait + TransactionTrait>(
    ctxs: &[HandlerCtx<'_, C>],
) -> Vec<HandlerResult> {
    let not_run = || {
        Err(HandlerError::Other(
            "not run: an earlier event of the batch failed".into(),
        ))
    };
    let intents: Vec<usize> = (0..ctxs.len())
        .filter(|&i| is_payment_intent(ctxs[i].event))
        .collect();
    let mut results: Vec<Option<HandlerResult>> = (0..ctxs.len()).map(|_| None).collect();
    let together: Vec<&HandlerCtx<'_, C>> = intents.iter().map(|&i| &ctxs[i]).collect();
    match payments::payment_intents(&together).await {
        Ok(done) => {
            for (&i, r) in intents.iter().zip(done) {
                results[i] = r;
            }
        }
        Err(e) => {
            let mut out: Vec<HandlerResult> = (0..ctxs.len()).map(|_| not_run()).collect();
            out[intents[0]] = Err(e);
            return out;
        }
    }
    let mut failed = false;
    for (ctx, slot) in ctxs.iter().zip(results.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        if failed {
            *slot = Some(not_run());
            continue;
        }
        let r = dispatch(ctx).await;
        failed = r.is_err();
        *slot = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(not_run))
        .collect()
}
