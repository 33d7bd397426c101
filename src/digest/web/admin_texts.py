"""The words of the staff admin pages (subscribers, import, issues), from the catalogue.

Merged into :func:`digest.web.texts.texts_for`; keys as there (``t.<key>`` in templates,
``state.texts[key]`` in routes, ``{name}`` placeholders for ``str.format``).
"""

from __future__ import annotations

from digest.catalogue import Translator


def admin_texts(t: Translator) -> dict[str, str]:
    return {
        "subscribers_nav": t.gettext("Subscribers"),
        "issues_nav": t.gettext("Issues"),
        "subscribers_title": t.gettext("Subscribers"),
        "search_label": t.gettext("Search by address or name"),
        "search_button": t.gettext("Search"),
        "filter_digest": t.gettext("Digest"),
        "filter_status": t.gettext("Status"),
        "filter_any": t.gettext("any"),
        "th_name": t.gettext("Name"),
        "no_subscribers": t.gettext("No subscribers found."),
        "next_page": t.gettext("Next page"),
        "first_page": t.gettext("First page"),
        "add_subscriber": t.gettext("Add subscriber"),
        "import_csv": t.gettext("Import CSV"),
        "export_csv": t.gettext("Export CSV"),
        "status_active": t.gettext("active"),
        "status_pending": t.gettext("unconfirmed"),
        "status_unsubscribed": t.gettext("unsubscribed"),
        "status_erased": t.gettext("erased"),
        "subscriber_title": t.gettext("Subscriber %(email)s", email="{email}"),
        "created": t.gettext("Created"),
        "confirmed": t.gettext("Confirmed"),
        "unsubscribed_at": t.gettext("Unsubscribed"),
        "edit_title": t.gettext("Name and digests"),
        "saved_subscriber": t.gettext("Saved."),
        "unsubscribe_staff": t.gettext("Unsubscribe"),
        "unsubscribe_staff_body": t.gettext(
            "The address gets no more digests; it stays on the list (unsubscribed)."
        ),
        "unsubscribed_staff": t.gettext("Unsubscribed: the address gets no more digests."),
        "erase_title": t.gettext("Erase (GDPR Art. 17)"),
        "erase_body": t.gettext(
            "Address, name and consent records are deleted; the deliveries keep only an anonymous row. A hash of the address keeps a later import from adding it back by mistake. This cannot be undone."
        ),
        "erase_confirm": t.gettext("Yes, erase this subscriber for good"),
        "erase_button": t.gettext("Erase for good"),
        "erased_notice": t.gettext("The subscriber was erased."),
        "erase_needs_confirm": t.gettext("Please tick the box to confirm the erasure."),
        "consent_title": t.gettext("Consent (double opt-in)"),
        "no_consent": t.gettext(
            "No sign-up through the form on record (e.g. imported or added by staff)."
        ),
        "th_requested_ip": t.gettext("Requested from"),
        "th_confirmed": t.gettext("Confirmed"),
        "th_confirm_ip": t.gettext("Confirmed from"),
        "th_form": t.gettext("Form"),
        "th_consent_version": t.gettext("Consent text"),
        "deliveries_title": t.gettext("Deliveries"),
        "no_deliveries": t.gettext("No deliveries yet."),
        "th_attempts": t.gettext("Attempts"),
        "th_last_reply": t.gettext("Last reply"),
        "th_sent": t.gettext("Sent"),
        "bounces_title": t.gettext("Bounces"),
        "no_bounces": t.gettext("No bounces on record."),
        "add_title": t.gettext("Add a subscriber"),
        "add_button": t.gettext("Add"),
        "added_subscriber": t.gettext("The subscriber is added."),
        "error_erased": t.gettext(
            "This address was erased (GDPR); it can only come back through the sign-up form with confirmation."
        ),
        "import_title": t.gettext("Import subscribers from CSV"),
        "import_intro": t.gettext(
            "Columns: email (required), name, digests (separated by ;). Without digests every digest applies. You see a preview first; nothing is imported until you confirm."
        ),
        "import_file": t.gettext("CSV file"),
        "import_preview_button": t.gettext("Show preview"),
        "import_preview_title": t.gettext("Import preview"),
        "import_mapping": t.gettext("Column mapping"),
        "th_column": t.gettext("Column in the file"),
        "th_field": t.gettext("Field"),
        "ignored": t.gettext("ignored"),
        "import_accepted": t.gettext("%(count)s rows will be imported", count="{count}"),
        "import_rejected": t.gettext("%(count)s rows will be rejected", count="{count}"),
        "th_line_problem": t.gettext("Line and reason"),
        "import_sample": t.gettext("The first rows"),
        "import_start": t.gettext("Import %(count)s rows", count="{count}"),
        "import_error": t.gettext("The file cannot be read: %(error)s", error="{error}"),
        "import_expired": t.gettext("This preview has expired. Please upload the file again."),
        "import_progress_title": t.gettext("Import running"),
        "import_done_title": t.gettext("Import finished"),
        "import_progress": t.gettext("%(done)s of %(total)s rows", done="{done}", total="{total}"),
        "import_result": t.gettext(
            "%(added)s new, %(updated)s updated, %(skipped)s skipped",
            added="{added}",
            updated="{updated}",
            skipped="{skipped}",
        ),
        "import_failed": t.gettext("Import failed: %(error)s", error="{error}"),
        "refresh": t.gettext("Refresh"),
        "issues_title": t.gettext("Issues"),
        "th_period": t.gettext("Period"),
        "th_items": t.gettext("Items"),
        "th_counts": t.gettext("Deliveries"),
        "issue_title": t.gettext(
            "Issue %(digest)s %(period)s", digest="{digest}", period="{period}"
        ),
        "issue_items": t.gettext("Items"),
        "counts_title": t.gettext("Deliveries by state"),
        "state_pending": t.gettext("pending"),
        "state_sending": t.gettext("sending"),
        "state_sent": t.gettext("sent"),
        "state_failed_temp": t.gettext("failed (will retry)"),
        "state_failed_perm": t.gettext("failed permanently"),
        "state_in_doubt": t.gettext("in doubt"),
        "state_skipped": t.gettext("skipped"),
        "issue_status_sending": t.gettext("sending"),
        "issue_status_paused": t.gettext("paused"),
        "issue_status_done": t.gettext("done"),
        "issue_status_empty": t.gettext("empty"),
        "issue_status_skipped": t.gettext("skipped"),
        "created_at": t.gettext("Created"),
        "completed_at": t.gettext("Completed"),
        "resolve_title": t.gettext("Resolve deliveries in doubt"),
        "resolve_body": t.gettext(
            "For these messages the server did not answer after the hand-over. They most likely arrived (RFC 5321 lets a server accept a message whose reply never reaches us). Nothing is re-sent automatically: you decide."
        ),
        "mark_delivered": t.gettext("Mark delivered"),
        "mark_all_delivered": t.gettext("Mark all delivered"),
        "resend": t.gettext("Resend …"),
        "resend_all": t.gettext("Resend all …"),
        "resend_confirm_title": t.gettext("Really send again?"),
        "resend_confirm_body": t.gettext(
            "%(count)s recipients get the issue once more, with a new Message-ID. If the server did accept the first message (which is possible, RFC 5321 section 6.1), they receive it twice.",
            count="{count}",
        ),
        "resend_button": t.gettext("Yes, send again"),
        "marked_delivered": t.gettext("%(count)s deliveries marked delivered.", count="{count}"),
        "resend_started": t.gettext("%(count)s deliveries are being sent again.", count="{count}"),
        "nothing_in_doubt": t.gettext("None of these deliveries is in doubt any more."),
        "deliveries_filter": t.gettext("Only state"),
        "show": t.gettext("Show"),
        "all_in_doubt_done": t.gettext("No deliveries in doubt."),
    }
