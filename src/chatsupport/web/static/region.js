// The person's region, for help lines: their own choice (the server keeps it for this session
// only), otherwise a guess made here from the browser's time zone and languages. The guess
// never leaves the page as anything but that region's code, and nothing is stored.

// Time zones of the regions the packaged help lines cover (a zone names one country here).
const ZONES = {
  "Europe/London": "GB", "Europe/Belfast": "GB", "Europe/Dublin": "IE", "Europe/Paris": "FR",
  "Europe/Berlin": "DE", "Europe/Vienna": "AT", "Europe/Brussels": "BE", "Europe/Amsterdam": "NL",
  "Europe/Madrid": "ES", "Atlantic/Canary": "ES", "Europe/Zurich": "CH", "Asia/Kolkata": "IN",
  "Asia/Calcutta": "IN", "Pacific/Auckland": "NZ", "America/Sao_Paulo": "BR",
  "America/Fortaleza": "BR", "America/Manaus": "BR", "America/Recife": "BR",
  "America/Bahia": "BR", "America/Toronto": "CA", "America/Vancouver": "CA",
  "America/Edmonton": "CA", "America/Winnipeg": "CA", "America/Halifax": "CA",
  "America/St_Johns": "CA", "America/Regina": "CA", "America/New_York": "US",
  "America/Chicago": "US", "America/Denver": "US", "America/Los_Angeles": "US",
  "America/Phoenix": "US", "America/Anchorage": "US", "America/Detroit": "US",
  "Pacific/Honolulu": "US",
};

function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

// The region to show first, or null. `known`: the codes that have their own lines.
export function guessRegion(known) {
  const tz = zone();
  const byZone = ZONES[tz] || (tz.startsWith("Australia/") ? "AU" : null);
  if (byZone) return known.has(byZone) ? byZone : null;
  // A zone of a country without its own lines says more than a language does ("en-US" is
  // spoken everywhere): only without a real zone is the language's region a fair guess.
  if (tz && tz !== "UTC" && !tz.startsWith("Etc/")) return null;
  for (const language of navigator.languages || [navigator.language || ""]) {
    const region = (language.split("-")[1] || "").toUpperCase();
    if (known.has(region)) return region;
  }
  return null;
}
