#!/usr/bin/env python3
"""Independent check of a Klaxon iCalendar feed (feature: iCalendar feed, issue 6).

Reads one RFC 5545 calendar on stdin, parses it with the `icalendar` package from PyPI (not
Klaxon's own code), validates what calendar clients rely on, and prints every event as JSON:
{"events": [{"uid", "start", "end", "summary"}]} with start/end in Unix seconds (UTC).
Exits 1 with the reason on stderr when the calendar is not valid.
Run as `ics_check.py --probe` to only check that `icalendar` is importable.
"""

import json
import sys


def fail(msg):
    print(f"invalid calendar: {msg}", file=sys.stderr)
    sys.exit(1)


def instant(event, name, tzids):
    prop = event.get(name)
    if prop is None:
        fail(f"VEVENT {event.get('UID')} has no {name}")
    value = prop.dt
    if not hasattr(value, "hour"):
        fail(f"VEVENT {event.get('UID')} {name} is a date, not a date-time")
    tzid = prop.params.get("TZID")
    if tzid is not None:
        # A zoned time must name a VTIMEZONE of the same calendar (RFC 5545 §3.2.19).
        if tzid not in tzids:
            fail(f"{name} uses TZID {tzid} without a VTIMEZONE")
    elif value.tzinfo is None:
        # Floating times mean a different instant in every client.
        fail(f"VEVENT {event.get('UID')} {name} is a floating time (neither UTC nor TZID)")
    return int(value.timestamp())


def main():
    import icalendar  # noqa: F401  (the probe below needs the import error to surface)

    if "--probe" in sys.argv:
        print(icalendar.__version__)
        return
    text = sys.stdin.buffer.read()
    try:
        cal = icalendar.Calendar.from_ical(text)
    except Exception as e:  # any parse error is a failed check
        fail(f"does not parse: {e}")
    if cal.name != "VCALENDAR":
        fail(f"top component is {cal.name}")
    for required in ("VERSION", "PRODID"):
        if cal.get(required) is None:
            fail(f"VCALENDAR has no {required}")
    if str(cal.get("VERSION")) != "2.0":
        fail(f"VERSION is {cal.get('VERSION')}")
    tzids = {str(tz.get("TZID")) for tz in cal.walk("VTIMEZONE")}
    events = []
    for ev in cal.walk("VEVENT"):
        for required in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"):
            if ev.get(required) is None:
                fail(f"VEVENT {ev.get('UID')} has no {required}")
        start = instant(ev, "DTSTART", tzids)
        end = instant(ev, "DTEND", tzids)
        instant(ev, "DTSTAMP", tzids)
        if end <= start:
            fail(f"VEVENT {ev.get('UID')} ends at or before its start")
        events.append(
            {"uid": str(ev.get("UID")), "start": start, "end": end, "summary": str(ev.get("SUMMARY"))}
        )
    json.dump({"events": events}, sys.stdout)


if __name__ == "__main__":
    main()
