"""The words of the web pages and the confirmation mail, from the site language's catalogue.

``t.<key>`` in the page templates and ``state.texts[key]`` in the routes; placeholders are
``{name}`` for ``str.format``. New pages may call ``_()`` / ``ngettext()`` directly.
"""

from __future__ import annotations

from digest.catalogue import Translator, translator_for
from digest.web.admin_texts import admin_texts


def texts_for(locale: str | Translator) -> tuple[str, dict[str, str]]:
    """(language, texts) for a site locale or translator."""
    t = translator_for(locale) if isinstance(locale, str) else locale
    return t.language, admin_texts(t) | {
        "skip": t.gettext("Skip to content"),
        "imprint": t.gettext("Imprint"),
        "privacy": t.gettext("Privacy"),
        "privacy_notice": t.gettext("privacy notice"),
        "required": t.gettext("required"),
        "subscribe_title": t.gettext("Subscribe to the newsletter"),
        "subscribe_intro": t.gettext(
            "Choose which digests you want by email. You will first get an email with a confirmation link."
        ),
        "email_label": t.gettext("Email address"),
        "name_label": t.gettext("Name (optional)"),
        "digests_label": t.gettext("I want to receive"),
        "honeypot_label": t.gettext("Leave this field empty"),
        "consent_text": t.gettext(
            "I want to receive the selected digests from %(site)s by email. I can unsubscribe at any time with the link in every email.",
            site="{site}",
        ),
        "subscribe_button": t.gettext("Subscribe"),
        "subscribe_sent_title": t.gettext("Please check your inbox"),
        "subscribe_sent_body": t.gettext(
            "If the address is valid, you will get an email with a confirmation link in a few minutes. We send you nothing else until you confirm. The link is valid for %(days)s days.",
            days="{days}",
        ),
        "error_email": t.gettext("Please enter a valid email address, e.g. name@example.org."),
        "error_digests": t.gettext("Please choose at least one digest."),
        "error_form": t.gettext("The form has expired or is incomplete. Please send it again."),
        "error_summary": t.gettext("Please correct the marked fields."),
        "rate_limited_title": t.gettext("Too many requests"),
        "rate_limited_body": t.gettext("Please try again later."),
        "send_failed_title": t.gettext("The email could not be sent"),
        "send_failed_body": t.gettext(
            "The confirmation email could not be sent just now. Please try again later."
        ),
        "confirm_title": t.gettext("Confirm your subscription"),
        "confirm_body": t.gettext(
            "Please confirm that %(email)s should receive these digests:", email="{email}"
        ),
        "confirm_button": t.gettext("Confirm subscription"),
        "confirmed_title": t.gettext("Subscription confirmed"),
        "confirmed_body": t.gettext("Thank you! %(email)s is now subscribed.", email="{email}"),
        "link_invalid_title": t.gettext("Link invalid or expired"),
        "link_invalid_body": t.gettext(
            "This link is unknown, has been used or has expired. You can subscribe again at any time."
        ),
        "subscribe_again": t.pgettext("link back to the sign-up form", "Subscribe"),
        "unsubscribe_title": t.gettext("Unsubscribe"),
        "unsubscribe_body": t.gettext(
            "Do you want to unsubscribe %(email)s from all digests of %(site)s?",
            email="{email}",
            site="{site}",
        ),
        "unsubscribe_button": t.gettext("Unsubscribe now"),
        "unsubscribed_title": t.gettext("You are unsubscribed"),
        "unsubscribed_body": t.gettext(
            "%(email)s will get no more digests from %(site)s.", email="{email}", site="{site}"
        ),
        "unsubscribe_generic": t.gettext(
            "To unsubscribe, please use the “Unsubscribe” link at the bottom of any email you received from us."
        ),
        "preferences_instead": t.gettext("Only want to stop some digests?"),
        "preferences_title": t.gettext("Preferences"),
        "preferences_body": t.gettext("Preferences for %(email)s", email="{email}"),
        "save_button": t.gettext("Save"),
        "saved": t.gettext("Your preferences are saved."),
        "unsubscribe_all": t.gettext("Unsubscribe from all digests"),
        "language_label": t.gettext("Language of the emails"),
        "topics_label": t.gettext("Topics in “%(digest)s”", digest="{digest}"),
        "topics_hint": t.gettext("Tick none to get every topic."),
        "cadence_question": t.gettext("How often would you like to receive the news?"),
        "cadence_question_named": t.gettext(
            "How often would you like to receive %(digests)s?", digests="{digests}"
        ),
        "cadence_hint": t.gettext("Tick what suits you; you can change it at any time."),
        "digest_with_topics": t.gettext(
            "%(digest)s, only on %(topics)s", digest="{digest}", topics="{topics}"
        ),
        "timezone_label": t.gettext("Time zone"),
        "timezone_hint": t.gettext("Local delivery times follow this time zone."),
        "timezone_default": t.gettext("The site's time zone (%(zone)s)", zone="{zone}"),
        "error_timezone": t.gettext(
            "“%(zone)s” is not a time zone we know. Please choose one from the list.",
            zone="{zone}",
        ),
        "arrives_at": t.gettext(
            "“%(digest)s” arrives at %(time)s your time.", digest="{digest}", time="{time}"
        ),
        "variant_label": t.gettext("The issue as a reader gets it"),
        "variant_topics": t.gettext("Topics the reader chose"),
        "variant_all_topics": t.gettext(
            "None ticked: a reader who chose no topic gets every item."
        ),
        "variant_button": t.gettext("Show"),
        "mail_subject": t.gettext("Please confirm your subscription to %(site)s", site="{site}"),
        "mail_greeting": t.gettext("Hello,"),
        "mail_body": t.gettext(
            "someone (hopefully you) subscribed this address to these digests from %(site)s:",
            site="{site}",
        ),
        "mail_action": t.gettext("Please confirm with this link:"),
        "mail_button": t.gettext("Confirm subscription"),
        "mail_expiry": t.gettext(
            "The link is valid for %(days)s days. If you did not subscribe, just ignore this email: without confirmation we send you nothing.",
            days="{days}",
        ),
        "login_title": t.gettext("Staff login"),
        "user_label": t.gettext("User name"),
        "password_label": t.gettext("Password"),
        "login_button": t.gettext("Log in"),
        "login_failed": t.gettext("Wrong user name or password."),
        "login_not_configured": t.gettext(
            "No staff password is set up. Open the one-time login link 'digest serve' printed at start, or run 'digest hash-password' and put the result into config.yaml as web.staff_password_hash."
        ),
        "login_link_used_title": t.gettext("Login link not valid"),
        "login_link_used_body": t.gettext(
            "This login link is wrong or was used already. Restart 'digest serve' for a new one, or set up a password (web.staff_password_hash)."
        ),
        "logout": t.gettext("Log out"),
        "dashboard_title": t.gettext("Dashboard"),
        "staff_nav": t.gettext("Staff"),
        "digests_nav": t.gettext("Digests"),
        "th_digest": t.gettext("Digest"),
        "th_issue": t.gettext("Issue"),
        "th_email": t.gettext("Email"),
        "th_requested": t.gettext("Requested"),
        "th_status": t.gettext("Status"),
        "schedule": t.gettext("Schedule"),
        "next_issue": t.gettext("Next issue"),
        "last_issue": t.gettext("Last issue"),
        "none_yet": t.gettext("none yet"),
        "subscribers_active": t.gettext("Active subscribers"),
        "deliveries": t.gettext("Deliveries"),
        "preview": t.gettext("Preview"),
        "send_now": t.gettext("Send now …"),
        "send_confirm_title": t.gettext("Send the issue now?"),
        "send_button": t.gettext("Send to everyone now"),
        "cancel": t.gettext("Cancel"),
        "test_send": t.gettext("Test send to"),
        "test_send_button": t.gettext("Send test"),
        "feedback": t.gettext("Bounces and complaints"),
        "issue_note": t.gettext("Note"),
        "in_doubt_title": t.gettext("Deliveries in doubt"),
        "in_doubt_body": t.gettext(
            "The server did not answer after the message was handed over; these are never re-sent automatically."
        ),
        "recent_signups": t.gettext("Recent sign-ups"),
        "sources_title": t.gettext("Sources"),
        "th_source": t.gettext("Source"),
        "th_health": t.gettext("Latest collection"),
        "no_source_state": t.gettext("Not collected yet."),
        "signup_pending": t.gettext("unconfirmed"),
        "signup_confirmed": t.gettext("confirmed"),
        "signup_expired": t.gettext("expired"),
        "no_signups": t.gettext("No sign-ups yet."),
        "jobs": t.gettext("Jobs"),
        "job_started": t.gettext("%(digest)s: sending …", digest="{digest}"),
        "job_test_started": t.gettext(
            "%(digest)s: test send to %(address)s …", digest="{digest}", address="{address}"
        ),
        "job_busy": t.gettext("%(digest)s: a job is already running.", digest="{digest}"),
        "job_sent": t.gettext(
            "%(digest)s: issue %(period)s: %(summary)s",
            digest="{digest}",
            period="{period}",
            summary="{summary}",
        ),
        "job_nothing": t.gettext(
            "%(digest)s: issue %(period)s is %(status)s; nothing sent",
            digest="{digest}",
            period="{period}",
            status="{status}",
        ),
        "job_failed": t.gettext(
            "%(digest)s: failed: %(error)s", digest="{digest}", error="{error}"
        ),
        "job_held": t.gettext(
            "%(digest)s: not sent, held: %(count)s error finding(s) in the issue (%(finding)s); see the preview",
            digest="{digest}",
            count="{count}",
            finding="{finding}",
        ),
        "job_repeat": t.gettext(
            "%(digest)s: not sent: issue %(period)s has gone out since",
            digest="{digest}",
            period="{period}",
        ),
        "job_no_subscribers": t.gettext(
            "%(digest)s: no active subscribers; nothing sent, nothing recorded", digest="{digest}"
        ),
        "job_nothing_new": t.gettext(
            "%(digest)s: nothing new since the last issue; nothing sent", digest="{digest}"
        ),
        "due_since": t.gettext("due since %(when)s", when="{when}"),
        "goes_out": t.gettext("goes out %(when)s", when="{when}"),
        "paused_alert": t.gettext("Sending paused: %(note)s", note="{note}"),
        "next_error": t.gettext("The next issue cannot be built: %(error)s", error="{error}"),
        "no_subscribers_alert": t.gettext("No active subscribers: nothing is sent or recorded."),
        "send_now_body": t.gettext(
            "An off-schedule issue of everything new since %(since)s (%(items)s items) goes to %(count)s subscribers now. The next scheduled issue starts after it.",
            since="{since}",
            items="{items}",
            count="{count}",
        ),
        "send_now_nothing": t.gettext(
            "Nothing new since the last issue (%(since)s); there is nothing to send.",
            since="{since}",
        ),
        "actions_locked": t.gettext("Send actions are locked until a staff password is set up."),
        "forbidden_title": t.gettext("Not allowed"),
        "forbidden_body": t.gettext("This action needs a login and a valid form."),
        "bad_host_title": t.gettext("Unknown host"),
        "bad_host_body": t.gettext("This page answers only the names listed in web.allowed_hosts."),
        "not_found_title": t.gettext("Page not found"),
        "not_found_body": t.gettext("There is no such page."),
        "preview_title": t.gettext("Preview: %(digest)s", digest="{digest}"),
        "view": t.gettext("View"),
        "view_desktop": t.gettext("Desktop"),
        "view_mobile": t.gettext("Mobile"),
        "view_dark": t.gettext("Dark"),
        "view_text": t.gettext("Plain text"),
        "downloads": t.gettext("Download"),
        "subject": t.gettext("Subject"),
        "preheader": t.gettext("Preheader"),
        "period": t.gettext("Period"),
        "recipients": t.gettext("Recipients"),
        "as_of": t.gettext("As of"),
        "findings": t.gettext("Check"),
        "no_findings": t.gettext("No findings."),
        "items_chosen": t.gettext("Items in this issue (%(count)s)", count="{count}"),
        "no_items": t.gettext("No new items: this issue would not be sent."),
        "items_left_out": t.gettext("Held back (%(count)s)", count="{count}"),
        "reason_max_items": t.gettext(
            "over max_items = %(max)s: goes into the next issue", max="{max}"
        ),
        "items_not_in_issue": t.gettext("Not in this issue (%(count)s)", count="{count}"),
        "reason_draft": t.gettext("draft (draft: true): never sent"),
        "reason_future": t.gettext("dated after the cutoff: goes into a later issue"),
        "reason_sent": t.gettext("already sent in an earlier issue"),
        "live_reload": t.gettext(
            "The preview reloads by itself when content, templates or the config change."
        ),
        "preview_error_title": t.gettext("The preview cannot be built"),
        "preview_error_hint": t.gettext("Once you save the fix, this page reloads by itself."),
        "email_frame": t.gettext("Email preview (%(view)s)", view="{view}"),
        "archive_title": t.gettext("Archive"),
        "archive_intro": t.gettext("Every issue sent, to read again."),
        "issues": t.gettext("Issues"),
        "no_issues": t.gettext("No issues sent yet."),
        "feed": t.gettext("Atom feed"),
        "items_count": t.ngettext("%(num)s item", "%(num)s items", 2, num="{count}"),
        # staff admin: an issue's variants, a subscriber's reader settings
        "variants_body": t.gettext(
            "Each variant (items chosen, language) is rendered once; every recipient gets one of them."
        ),
        "th_variant": t.gettext("Variant"),
        "th_language": t.gettext("Language"),
        "th_items": t.gettext("Items"),
        "th_recipients": t.gettext("Recipients"),
        "variant_own": t.gettext("the issue's own rendering"),
        "variant_number": t.gettext("variant %(number)s", number="{number}"),
        "reader_language": t.gettext("Language"),
        "reader_timezone": t.gettext("Time zone"),
        "reader_topics": t.gettext("Topics"),
        "site_default": t.gettext("the site's (%(value)s)", value="{value}"),
        "every_topic": t.gettext("every topic"),
    }
