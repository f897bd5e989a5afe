// A photo as it is kept: optionally reduced to 2048 px with its EXIF kept (capture time, GPS), its
// sha256, and the phone's own location as a separate, weaker signal (Android browsers strip GPS).

export interface PreparedPhoto {
  blob: Blob;
  sha256: string;
  location: { lat: number; lon: number; accuracy_m: number } | null;
}

let lastFix: { lat: number; lon: number; accuracy_m: number; at: number } | null = null;

/** The most recent position the phone gave (within two minutes), without waiting for a new one. */
function recentLocation(): PreparedPhoto["location"] {
  if (typeof navigator !== "undefined" && "geolocation" in navigator) {
    navigator.geolocation.getCurrentPosition(
      (p) => (lastFix = { lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: Math.round(p.coords.accuracy), at: Date.now() }),
      () => undefined,
      { maximumAge: 120_000, timeout: 10_000 },
    );
  }
  if (!lastFix || Date.now() - lastFix.at > 120_000) return null;
  return { lat: lastFix.lat, lon: lastFix.lon, accuracy_m: lastFix.accuracy_m };
}

async function reduced(file: File): Promise<Blob> {
  const { default: Compressor } = await import("compressorjs");
  return new Promise((resolve) => {
    // retainExif keeps the evidence metadata that canvas re-encoding would otherwise drop.
    new Compressor(file, {
      maxWidth: 2048, maxHeight: 2048, quality: 0.85, retainExif: true, convertSize: Infinity,
      success: (result) => resolve(result),
      error: () => resolve(file),
    });
  });
}

export async function sha256Hex(blob: Blob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function preparePhoto(file: File, size: "original" | "2048"): Promise<PreparedPhoto> {
  const location = recentLocation();
  const blob = size === "2048" && file.type === "image/jpeg" ? await reduced(file) : file;
  // A File's bytes are read now, so the stored Blob does not depend on the picked file staying readable.
  const bytes = new Blob([await blob.arrayBuffer()], { type: blob.type || file.type || "image/jpeg" });
  return { blob: bytes, sha256: await sha256Hex(bytes), location };
}
