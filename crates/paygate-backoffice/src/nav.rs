//! The navigation of the merchant pages and of the operator console. A new page with its own
//! menu entry adds a line here (and its label to the catalogue's `[nav]`).

/// One menu entry.
#[derive(Clone, Copy, Debug)]
pub struct NavItem {
    /// Where it goes; also the prefix of the paths that mark it current.
    pub href: &'static str,
    /// Catalogue key of its label.
    pub key: &'static str,
    /// A data page (it shows objects of one mode, test or live): a link to it keeps the mode
    /// the merchant chose (see [`crate::merchant::mode`]).
    pub data: bool,
}

/// The merchant pages (`/app/…`), in menu order.
pub const MERCHANT: &[NavItem] = &[
    NavItem {
        href: "/app",
        key: "nav.dashboard",
        data: true,
    },
    NavItem {
        href: "/app/connect",
        key: "nav.connect",
        data: true,
    },
    NavItem {
        href: "/app/stripe",
        key: "nav.stripe",
        data: false,
    },
    NavItem {
        href: "/app/events",
        key: "nav.events",
        data: true,
    },
    NavItem {
        href: "/app/orders",
        key: "nav.orders",
        data: true,
    },
    NavItem {
        href: "/app/disputes",
        key: "nav.disputes",
        data: true,
    },
    NavItem {
        href: "/app/subscriptions",
        key: "nav.subscriptions",
        data: true,
    },
    NavItem {
        href: "/app/invoices",
        key: "nav.invoices",
        data: true,
    },
    NavItem {
        href: "/app/customers",
        key: "nav.customers",
        data: true,
    },
    NavItem {
        href: "/app/notifications",
        key: "nav.notifications",
        data: true,
    },
    NavItem {
        href: "/app/api-keys",
        key: "nav.api_keys",
        data: false,
    },
    NavItem {
        href: "/app/users",
        key: "nav.users",
        data: false,
    },
];

/// The operator console (`/console/…`), in menu order.
pub const CONSOLE: &[NavItem] = &[
    NavItem {
        href: "/console/companies",
        key: "nav.companies",
        data: false,
    },
    NavItem {
        href: "/console/operators",
        key: "nav.operators",
        data: false,
    },
    NavItem {
        href: "/console/system",
        key: "nav.system",
        data: false,
    },
];

/// The entry `path` belongs to: the longest `href` that is `path` or a parent of it.
pub fn current(items: &[NavItem], path: &str) -> Option<&'static str> {
    items
        .iter()
        .filter(|i| {
            path == i.href
                || path
                    .strip_prefix(i.href)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|i| i.href.len())
        .map(|i| i.href)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_entry_is_current() {
        assert_eq!(current(MERCHANT, "/app"), Some("/app"));
        assert_eq!(current(MERCHANT, "/app/users"), Some("/app/users"));
        assert_eq!(current(MERCHANT, "/app/users/usr_1"), Some("/app/users"));
        assert_eq!(current(MERCHANT, "/app/usersx"), Some("/app"));
        assert_eq!(current(CONSOLE, "/console"), None);
    }
}
