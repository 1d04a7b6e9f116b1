//! The cabinet's words in Russian and English, each sentence written once with both of its
//! languages beside it, so that a screen never shows half of each. The language is the one the
//! merchant picked (a cookie), else the browser's `Accept-Language`, else Russian.
//!
//! Owns every sentence a merchant reads. Must never hold markup: the renderer escapes these like
//! any other value.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_LANGUAGE;

/// The cookie that keeps the merchant's choice.
pub(crate) const LANG_COOKIE: &str = "cabinet_lang";

pub(crate) use crate::html::Lang;

impl Lang {
    /// The language of a `lang` attribute, the cookie's value, the switch's path segment.
    pub(crate) fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (the switch offers it).
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Ru => Lang::En,
            Lang::En => Lang::Ru,
        }
    }

    /// The merchant's choice, else the first of Russian and English the browser asks for (in its
    /// order; q-values are rarely anything but decreasing), else Russian.
    pub(crate) fn of_request(headers: &HeaderMap) -> Lang {
        let chosen = super::cookie(headers, LANG_COOKIE).and_then(|v| Lang::from_code(&v));
        chosen
            .or_else(|| {
                headers
                    .get(ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())?
                    .split(',')
                    .filter_map(|part| {
                        let tag = part.split(';').next()?.trim();
                        let primary = tag.split('-').next()?.to_ascii_lowercase();
                        Lang::from_code(&primary)
                    })
                    .next()
            })
            .unwrap_or(Lang::Ru)
    }

    /// A sentence in this language.
    pub(crate) fn t(self, m: Msg) -> &'static str {
        text(self, m)
    }
}

macro_rules! messages {
    ($($name:ident => $ru:literal, $en:literal;)*) => {
        /// Every sentence of the cabinet.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Msg {
            $($name,)*
        }

        fn text(lang: Lang, m: Msg) -> &'static str {
            match m {
                $(Msg::$name => match lang {
                    Lang::Ru => $ru,
                    Lang::En => $en,
                },)*
            }
        }
    };
}

messages! {
    Cabinet => "Личный кабинет", "Merchant's cabinet";
    LanguageName => "Русский", "English";
    Login => "Вход", "Log in";
    LoginField => "Логин", "Login";
    PasswordField => "Пароль", "Password";
    LogIn => "Войти", "Log in";
    WrongLogin => "Неверный логин или пароль.", "Wrong login or password.";
    Logout => "Выйти", "Log out";
    Orders => "Заказы", "Orders";
    Customers => "Покупатели One Click", "One Click customers";
    Settings => "Настройки", "Settings";
    Search => "Найти", "Search";
    OrderNumber => "Номер заказа", "Order number";
    Billnumber => "Номер в системе (billnumber)", "Billnumber";
    DateFrom => "С даты", "From";
    DateTo => "По дату", "To";
    State => "Состояние", "State";
    AnyState => "Любое", "Any";
    Created => "Создан", "Created";
    Amount => "Сумма", "Amount";
    Card => "Карта", "Card";
    Customer => "Покупатель", "Customer";
    NoOrders => "Заказов не найдено.", "No orders found.";
    FirstOnly => "Показаны первые 200 заказов; уточните поиск.", "The first 200 orders are shown; narrow the search.";
    BadSearch => "Проверьте условия поиска: даты в виде ГГГГ-ММ-ДД, номер в системе из 16 цифр.", "Check the search: dates as YYYY-MM-DD, a billnumber of 16 digits.";
    Order => "Заказ", "Order";
    Authorized => "Авторизовано", "Authorized";
    Captured => "Списано", "Captured";
    CancelledSum => "Возвращено", "Cancelled";
    Payment => "Оплата", "Payment";
    OneStage => "одностадийная", "one-stage";
    TwoStage => "двухстадийная", "two-stage";
    Operations => "Операции", "Operations";
    OpPayment => "оплата", "payment";
    OpCharge => "списание", "charge";
    OpCancel => "отмена", "cancel";
    Operation => "Операция", "Operation";
    Kind => "Тип", "Type";
    Status => "Статус", "Status";
    ApprovalCode => "Код авторизации", "Approval code";
    ResponseCode => "Код ответа", "Response code";
    NetworkCode => "Код сети", "Network code";
    ChargeTitle => "Подтвердить (списать)", "Charge";
    ChargeAmount => "Сумма списания (пусто — полностью)", "Amount to charge (empty: all)";
    ChargeButton => "Списать", "Charge";
    CancelTitle => "Отменить (вернуть)", "Cancel";
    CancelAmount => "Сумма отмены (пусто — всё, что осталось)", "Amount to cancel (empty: all that is left)";
    CancelButton => "Отменить", "Cancel";
    Charged => "Заказ подтверждён.", "The order was charged.";
    Cancelled => "Отмена проведена.", "The cancel went through.";
    Declined => "Операция отклонена.", "The operation was declined.";
    Refused => "Операция не выполнена", "Not done";
    BadAmount => "Сумма — число с не более чем двумя знаками после запятой.", "An amount is a number with at most two decimals.";
    Unavailable => "Сервис временно недоступен, повторите позже.", "The service is unavailable for now; try again later.";
    CustomerNumber => "Номер покупателя (CustomerNumber)", "CustomerNumber";
    Find => "Найти", "Find";
    BadCustomer => "Номер покупателя — до 32 символов A-Z a-z 0-9 . _ - @ +.", "A CustomerNumber is up to 32 of A-Z a-z 0-9 . _ - @ +.";
    StatusNew => "нет (новый покупатель)", "none (new customer)";
    StatusMember => "Member (есть сохранённые карты)", "Member (has saved cards)";
    StatusDeny => "Deny (One Click запрещён)", "Deny (One Click refused)";
    SetDeny => "Запретить One Click (Deny)", "Refuse One Click (Deny)";
    LiftDeny => "Снять запрет", "Lift Deny";
    DenySet => "Покупателю запрещён One Click.", "One Click is now refused for this customer.";
    DenyLifted => "Запрет снят.", "Deny was lifted.";
    SavedCards => "Сохранённые карты", "Saved cards";
    NoCards => "Сохранённых карт нет.", "No saved cards.";
    Brand => "Платёжная система", "Brand";
    Expiry => "Срок действия", "Expiry";
    Active => "Активна", "Active";
    Yes => "да", "yes";
    No => "нет", "no";
    Payments => "Успешных оплат", "Successful payments";
    Remove => "Удалить", "Remove";
    RemoveTitle => "Удалить карту?", "Remove this card?";
    RemoveText => "Карта будет удалена безвозвратно; покупатель не сможет платить ею в один клик.", "The card is erased for good; the customer can no longer pay with it in one click.";
    RemoveYes => "Да, удалить", "Yes, remove it";
    Back => "Назад", "Back";
    Removed => "Карта удалена.", "The card was removed.";
    NoSuchCard => "Такой карты у покупателя нет.", "The customer has no such card.";
    FormExpired => "Форма устарела", "The form has expired";
    FormExpiredText => "Форма отправлена без действующего ключа защиты. Откройте страницу заново и повторите.", "The form was sent without a valid protection token. Open the page again and repeat.";
    NotFound => "Не найдено", "Not found";
    NotFoundText => "Такой страницы или заказа нет.", "There is no such page or order.";
    Notifications => "Уведомления о результатах", "Result notifications";
    NotificationUrl => "Адрес для уведомлений (notification URL)", "Notification URL";
    NotifyWhich => "Какие результаты отправлять", "Which results are sent";
    NotifyPayments => "оплаты", "payments";
    NotifyCharges => "подтверждения (списания)", "charges";
    NotifyCancels => "отмены и возвраты", "cancels and refunds";
    NotifyTimeouts => "истёкшие неоплаченные заказы", "orders that expired unpaid";
    NotifyOnlySuccessful => "только успешные", "only successful ones";
    NoNotifications => "Уведомлений по заказу нет.", "No notifications for this order.";
    NoticePending => "ожидает отправки", "waiting to be sent";
    NoticeAcknowledged => "принято магазином", "acknowledged";
    NoticeRefused => "отклонено магазином", "refused by the shop";
    NoticeFailed => "не доставлено", "not delivered";
    NoticeRetry => "будет повторено", "to be tried again";
    AttemptAt => "Попытка", "Attempt";
    AttemptError => "Ошибка", "Error";
    ByHand => "вручную", "by hand";
    Resend => "Отправить повторно", "Re-send";
    Resent => "Уведомление поставлено на повторную отправку.", "The notification is being sent again.";
    ResendInFlight => "Уведомление отправляется прямо сейчас; повторите через минуту.", "A try of this notification is in flight; try again in a moment.";
    ReturnUrls => "Адреса возврата покупателя (если заказ их не передал)", "Return URLs (used when an order sends none)";
    ReturnOk => "После успешной оплаты (URL_RETURN_OK)", "After a successful payment (URL_RETURN_OK)";
    ReturnNo => "После неуспешной оплаты (URL_RETURN_NO)", "After a failed payment (URL_RETURN_NO)";
    Save => "Сохранить", "Save";
    SettingsSaved => "Настройки сохранены.", "The settings were saved.";
    BadUrl => "Адрес должен начинаться с http:// или https:// и быть не длиннее 255 символов, без пробелов.", "A URL starts with http:// or https://, has no spaces and is at most 255 characters.";
    Integrity => "Контроль целостности заказа", "Order integrity";
    IntegrityCheckvalue => "checkvalue (MD5 с секретным словом; само слово не показывается)", "checkvalue (MD5 with the secret word; the word is never shown)";
    IntegritySignature => "подпись RSA (signature); открытых ключей:", "RSA signature; public keys:";
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_merchants_choice_wins_over_the_browser() {
        let h = headers(&[("cookie", "cabinet_lang=en"), ("accept-language", "ru-RU")]);
        assert_eq!(Lang::of_request(&h), Lang::En);
    }

    #[test]
    fn the_browser_language_is_taken_when_known_else_russian() {
        assert_eq!(
            Lang::of_request(&headers(&[(
                "accept-language",
                "de-DE,en-GB;q=0.8,ru;q=0.5"
            )])),
            Lang::En
        );
        assert_eq!(
            Lang::of_request(&headers(&[("accept-language", "de")])),
            Lang::Ru
        );
        assert_eq!(Lang::of_request(&HeaderMap::new()), Lang::Ru);
    }
}
