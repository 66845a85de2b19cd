//! Shopper e-mails through SMTP (seed 004: a delayed payment is confirmed by e-mail), in the
//! shopper's language.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

/// Sends e-mails through the SMTP server of `PAYGATE_SMTP_URL`.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::Address,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold the SMTP password: never printed.
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// An e-mail about to be sent.
#[derive(Debug)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

impl Mailer {
    /// A mailer for `url` (`smtp://host:port`, `smtps://user:pass@host`,
    /// `smtp://host:587?tls=required`) sending from `from`.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("PAYGATE_SMTP_URL is not a valid SMTP URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("PAYGATE_SMTP_FROM is not an e-mail address: {e}"))?;
        Ok(Self { transport, from })
    }

    /// Sends `mail` to `to` with `sender_name` as the display name; `message_id` makes the
    /// e-mail's `Message-ID` stable across retries.
    pub async fn send(
        &self,
        to: &str,
        sender_name: Option<&str>,
        message_id: &str,
        mail: Mail,
    ) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("the shopper's address is not valid: {e}"))?;
        let domain = self.from.domain().to_owned();
        let m = Message::builder()
            .from(Mailbox::new(
                sender_name.map(str::to_owned),
                self.from.clone(),
            ))
            .to(to)
            .subject(mail.subject)
            .message_id(Some(format!("<{message_id}@{domain}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| format!("the e-mail could not be built: {e}"))?;
        self.transport
            .send(m)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// Minor units per major unit of a currency (ISO 4217 exponents Stripe uses).
fn exponent(currency: &str) -> u32 {
    match currency.to_ascii_lowercase().as_str() {
        "bif" | "clp" | "djf" | "gnf" | "jpy" | "kmf" | "krw" | "mga" | "pyg" | "rwf" | "ugx"
        | "vnd" | "vuv" | "xaf" | "xof" | "xpf" => 0,
        "bhd" | "jod" | "kwd" | "omr" | "tnd" => 3,
        _ => 2,
    }
}

/// `amount` (minor units) in `currency`, written for `lang`: `19,99 EUR` in it/de, `19.99 EUR`
/// in English.
pub fn format_amount(amount: i64, currency: &str, lang: &str) -> String {
    let e = exponent(currency);
    let cur = currency.to_ascii_uppercase();
    let sign = if amount < 0 { "-" } else { "" };
    let a = amount.unsigned_abs();
    if e == 0 {
        return format!("{sign}{a} {cur}");
    }
    let p = 10u64.pow(e);
    let sep = if lang == "en" { '.' } else { ',' };
    format!("{sign}{}{sep}{:0w$} {cur}", a / p, a % p, w = e as usize)
}

/// The language of an e-mail: the shopper's locale if Paygate speaks it, else English.
pub fn language(locale: Option<&str>) -> &'static str {
    match locale.map(|l| l.get(..2).unwrap_or(l).to_ascii_lowercase()) {
        Some(l) if l == "it" => "it",
        Some(l) if l == "de" => "de",
        _ => "en",
    }
}

/// The e-mail to a shopper for an order message (`order.paid`, `order.fulfilled`,
/// `order.payment_failed`, `order.expired`, `order.canceled`), a dunning message
/// (`invoice.payment_failed`) or a trial ending (`subscription.trial_will_end`), or `None` for
/// other types.
///
/// Issue 20: a failed, expired or cancelled payment's e-mail invites the shopper back to pay
/// again (the words of the shopper page's `shopper.pay_again_hint`), with `pay_again_url` (the
/// order's Checkout `cancel_url`, else its `return_url`) when the order has one.
pub fn compose(
    event_type: &str,
    order: &Value,
    lang: &str,
    merchant: &str,
    pay_again_url: Option<&str>,
) -> Option<Mail> {
    if event_type == crate::outbox::INVOICE_PAYMENT_FAILED {
        return dunning(order, lang, merchant);
    }
    if event_type == "subscription.trial_will_end" {
        return trial_will_end(order, lang, merchant);
    }
    let id = order["client_reference_id"]
        .as_str()
        .or_else(|| order["id"].as_str())
        .unwrap_or_default();
    let amount = match (order["amount"].as_i64(), order["currency"].as_str()) {
        (Some(a), Some(c)) => format_amount(a, c, lang),
        _ => String::new(),
    };
    let ok = match event_type {
        "order.paid" | "order.fulfilled" => true,
        "order.payment_failed" => false,
        "order.expired" | "order.canceled" => {
            let expired = event_type == "order.expired";
            return unpaid(id, &amount, lang, merchant, pay_again_url, expired);
        }
        _ => return None,
    };
    let again = pay_again(lang, pay_again_url);
    let (subject, body) = match (lang, ok) {
        ("it", true) => (
            format!("Pagamento ricevuto: ordine {id}"),
            format!(
                "Gentile cliente,\n\nabbiamo ricevuto il pagamento di {amount} per l'ordine {id}. L'ordine è confermato.\n\nGrazie,\n{merchant}\n"
            ),
        ),
        ("it", false) => (
            format!("Pagamento non riuscito: ordine {id}"),
            format!(
                "Gentile cliente,\n\nil pagamento di {amount} per l'ordine {id} non è andato a buon fine e l'ordine non è stato confermato. Puoi riprovare con un altro metodo di pagamento.\n\n{again}{merchant}\n"
            ),
        ),
        ("de", true) => (
            format!("Zahlung eingegangen: Bestellung {id}"),
            format!(
                "Guten Tag,\n\nwir haben Ihre Zahlung über {amount} für die Bestellung {id} erhalten. Ihre Bestellung ist bestätigt.\n\nVielen Dank,\n{merchant}\n"
            ),
        ),
        ("de", false) => (
            format!("Zahlung fehlgeschlagen: Bestellung {id}"),
            format!(
                "Guten Tag,\n\nIhre Zahlung über {amount} für die Bestellung {id} ist fehlgeschlagen; die Bestellung wurde nicht bestätigt. Sie können es mit einer anderen Zahlungsart erneut versuchen.\n\n{again}{merchant}\n"
            ),
        ),
        (_, true) => (
            format!("Payment received: order {id}"),
            format!(
                "Hello,\n\nwe have received your payment of {amount} for order {id}. Your order is confirmed.\n\nThank you,\n{merchant}\n"
            ),
        ),
        (_, false) => (
            format!("Payment failed: order {id}"),
            format!(
                "Hello,\n\nyour payment of {amount} for order {id} did not go through, and the order is not confirmed. You can try again with another payment method.\n\n{again}{merchant}\n"
            ),
        ),
    };
    Some(Mail { subject, body })
}

/// The invitation to pay again (issue 20), a paragraph ending in a blank line: the shopper
/// page's `shopper.pay_again_hint`, then the link back to the shop when there is one.
fn pay_again(lang: &str, url: Option<&str>) -> String {
    let url = url.filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    let (hint, link) = match lang {
        "it" => (
            "Per questo ordine non è stato addebitato nulla. Puoi tornare al negozio e pagare di nuovo",
            "Per pagare di nuovo",
        ),
        "de" => (
            "Für diese Bestellung wurde nichts abgebucht. Sie können zum Shop zurückkehren und erneut bezahlen",
            "Zum erneuten Bezahlen",
        ),
        _ => (
            "No money was taken for this order. You can go back to the shop and pay again",
            "To pay again",
        ),
    };
    match url {
        Some(u) => format!("{hint}.\n\n{link}: {u}\n\n"),
        None => format!("{hint}.\n\n"),
    }
}

/// An expired or cancelled order's e-mail (issue 20): the checkout expired, or the payment did
/// not go through (a payment intent or a Source cancelled, a Source failed); nothing was paid,
/// the shopper may pay again.
fn unpaid(
    id: &str,
    amount: &str,
    lang: &str,
    merchant: &str,
    pay_again_url: Option<&str>,
    expired: bool,
) -> Option<Mail> {
    let again = pay_again(lang, pay_again_url);
    let (subject, body) = match (lang, expired) {
        ("it", true) => (
            format!("Pagamento scaduto: ordine {id}"),
            format!(
                "Gentile cliente,\n\nil pagamento di {amount} per l'ordine {id} è scaduto prima di essere completato e l'ordine non è stato confermato.\n\n{again}{merchant}\n"
            ),
        ),
        ("it", false) => (
            format!("Pagamento non completato: ordine {id}"),
            format!(
                "Gentile cliente,\n\nil pagamento di {amount} per l'ordine {id} non è andato a buon fine e l'ordine non è stato confermato.\n\n{again}{merchant}\n"
            ),
        ),
        ("de", true) => (
            format!("Zahlung abgelaufen: Bestellung {id}"),
            format!(
                "Guten Tag,\n\nIhre Zahlung über {amount} für die Bestellung {id} ist abgelaufen, bevor sie abgeschlossen wurde; die Bestellung wurde nicht bestätigt.\n\n{again}{merchant}\n"
            ),
        ),
        ("de", false) => (
            format!("Zahlung nicht abgeschlossen: Bestellung {id}"),
            format!(
                "Guten Tag,\n\nIhre Zahlung über {amount} für die Bestellung {id} ist nicht zustande gekommen; die Bestellung wurde nicht bestätigt.\n\n{again}{merchant}\n"
            ),
        ),
        (_, true) => (
            format!("Checkout expired: order {id}"),
            format!(
                "Hello,\n\nthe checkout of {amount} for order {id} expired before the payment was made, and the order is not confirmed.\n\n{again}{merchant}\n"
            ),
        ),
        (_, false) => (
            format!("Payment not completed: order {id}"),
            format!(
                "Hello,\n\nyour payment of {amount} for order {id} did not go through, and the order is not confirmed.\n\n{again}{merchant}\n"
            ),
        ),
    };
    Some(Mail { subject, body })
}

/// Issue 19: the shopper's e-mail after a failed payment of a subscription invoice, with the
/// link to the invoice page where they can pay (none without a link).
fn dunning(invoice: &Value, lang: &str, merchant: &str) -> Option<Mail> {
    let url = invoice["hosted_invoice_url"].as_str()?;
    let number = invoice["number"]
        .as_str()
        .or_else(|| invoice["id"].as_str())
        .unwrap_or_default();
    let amount = match (invoice["amount_due"].as_i64(), invoice["currency"].as_str()) {
        (Some(a), Some(c)) => format_amount(a, c, lang),
        _ => String::new(),
    };
    let (subject, body) = match lang {
        "it" => (
            format!("Pagamento non riuscito: fattura {number}"),
            format!(
                "Gentile cliente,\n\nnon siamo riusciti ad addebitare {amount} per la fattura {number} del tuo abbonamento. Puoi pagarla o aggiornare il metodo di pagamento qui:\n\n{url}\n\nGrazie,\n{merchant}\n"
            ),
        ),
        "de" => (
            format!("Zahlung fehlgeschlagen: Rechnung {number}"),
            format!(
                "Guten Tag,\n\nwir konnten {amount} für die Rechnung {number} Ihres Abonnements nicht einziehen. Sie können die Rechnung hier bezahlen oder Ihre Zahlungsart aktualisieren:\n\n{url}\n\nVielen Dank,\n{merchant}\n"
            ),
        ),
        _ => (
            format!("Payment failed: invoice {number}"),
            format!(
                "Hello,\n\nwe could not collect {amount} for invoice {number} of your subscription. You can pay it or update your payment method here:\n\n{url}\n\nThank you,\n{merchant}\n"
            ),
        ),
    };
    Some(Mail { subject, body })
}

/// Issue 19: the shopper's e-mail a few days before their trial ends.
fn trial_will_end(sub: &Value, lang: &str, merchant: &str) -> Option<Mail> {
    let day = sub["trial_end"]
        .as_str()
        .map(|t| t.get(..10).unwrap_or(t).to_owned())
        .unwrap_or_default();
    let (subject, body) = match lang {
        "it" => (
            "Il tuo periodo di prova sta per terminare".to_owned(),
            format!(
                "Gentile cliente,\n\nil periodo di prova del tuo abbonamento termina il {day}; da allora l'abbonamento sarà addebitato.\n\n{merchant}\n"
            ),
        ),
        "de" => (
            "Ihr Testzeitraum endet bald".to_owned(),
            format!(
                "Guten Tag,\n\nder Testzeitraum Ihres Abonnements endet am {day}; danach wird das Abonnement berechnet.\n\n{merchant}\n"
            ),
        ),
        _ => (
            "Your trial ends soon".to_owned(),
            format!(
                "Hello,\n\nthe trial of your subscription ends on {day}; after that the subscription will be charged.\n\n{merchant}\n"
            ),
        ),
    };
    Some(Mail { subject, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_minor_units_by_currency_and_language() {
        assert_eq!(format_amount(1999, "eur", "it"), "19,99 EUR");
        assert_eq!(format_amount(1999, "eur", "en"), "19.99 EUR");
        assert_eq!(format_amount(500, "jpy", "de"), "500 JPY");
        assert_eq!(format_amount(1005, "kwd", "en"), "1.005 KWD");
        assert_eq!(format_amount(5, "usd", "en"), "0.05 USD");
    }

    #[test]
    fn dunning_e_mails_carry_the_link_to_pay_in_the_customers_language() {
        let inv = serde_json::json!({"id": "in_1", "number": "NR-7", "amount_due": 2000,
            "currency": "eur", "hosted_invoice_url": "https://invoice.stripe.com/i/x"});
        let it = compose(
            crate::outbox::INVOICE_PAYMENT_FAILED,
            &inv,
            "it",
            "Negozio",
            None,
        )
        .unwrap_or_else(|| unreachable!());
        assert!(it.subject.contains("NR-7") && it.subject.starts_with("Pagamento non riuscito"));
        assert!(
            it.body.contains("https://invoice.stripe.com/i/x") && it.body.contains("20,00 EUR")
        );
        let de = compose(
            crate::outbox::INVOICE_PAYMENT_FAILED,
            &inv,
            "de",
            "Laden",
            None,
        );
        assert!(de.is_some_and(|m| m.subject.starts_with("Zahlung fehlgeschlagen")));
        // Without a link there is nothing to offer: no e-mail.
        let bare = serde_json::json!({"id": "in_1", "amount_due": 2000, "currency": "eur"});
        assert!(
            compose(
                crate::outbox::INVOICE_PAYMENT_FAILED,
                &bare,
                "en",
                "x",
                None
            )
            .is_none()
        );
        let sub = serde_json::json!({"trial_end": "2026-12-24T10:00:00Z"});
        let en = compose("subscription.trial_will_end", &sub, "en", "Shop", None);
        assert!(en.is_some_and(|m| m.body.contains("2026-12-24")));
    }

    #[test]
    fn e_mails_speak_the_shoppers_language() {
        let o = serde_json::json!({"id": "ord_1", "amount": 1999, "currency": "eur"});
        let it = compose("order.paid", &o, "it", "Negozio", None).unwrap_or_else(|| unreachable!());
        assert!(it.subject.contains("ord_1") && it.body.contains("19,99 EUR"));
        let de = compose("order.payment_failed", &o, "de", "Laden", None);
        assert!(de.is_some_and(|m| m.subject.starts_with("Zahlung fehlgeschlagen")));
        assert!(compose("dispute.opened", &o, "en", "x", None).is_none());
        // Issue 20: a failed or expired payment invites the shopper back to pay again.
        let url = Some("https://shop.example/cart");
        let it = compose("order.payment_failed", &o, "it", "Negozio", url);
        assert!(
            it.is_some_and(|m| m.body.contains("pagare di nuovo")
                && m.body.contains("https://shop.example/cart"))
        );
        let de = compose("order.expired", &o, "de", "Laden", url);
        assert!(
            de.is_some_and(|m| m.body.contains("erneut bezahlen")
                && m.body.contains("https://shop.example/cart"))
        );
        let en = compose("order.canceled", &o, "en", "Shop", None);
        assert!(en.is_some_and(|m| m.body.contains("pay again") && !m.body.contains("http")));
        // An expired checkout and a cancelled payment say which of the two happened.
        fn subject_id(lang: &str) -> &'static str {
            match lang {
                "it" => "ordine ord_1",
                "de" => "Bestellung ord_1",
                _ => "order ord_1",
            }
        }
        for (lang, expired, cancelled) in [
            ("en", "Checkout expired", "Payment not completed"),
            ("it", "Pagamento scaduto", "Pagamento non completato"),
            ("de", "Zahlung abgelaufen", "Zahlung nicht abgeschlossen"),
        ] {
            let e = compose("order.expired", &o, lang, "Shop", url);
            assert!(
                e.is_some_and(|m| m.subject == format!("{expired}: {}", subject_id(lang))
                    && m.body.contains("19")
                    && m.body.contains("https://shop.example/cart"))
            );
            let c = compose("order.canceled", &o, lang, "Shop", url);
            assert!(c.is_some_and(|m| m.subject.starts_with(cancelled)
                && m.body.contains("https://shop.example/cart")
                && m.body.ends_with("Shop\n")));
        }
        let paid = compose("order.paid", &o, "en", "Shop", url);
        assert!(paid.is_some_and(|m| !m.body.contains("pay again")));
        assert_eq!(language(Some("it-IT")), "it");
        assert_eq!(language(Some("fr")), "en");
        assert_eq!(language(None), "en");
    }
}
