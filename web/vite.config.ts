// The web app is served by the API server under /app/ and built into its static folder.
import { fileURLToPath, URL } from "node:url";
import vue from "@vitejs/plugin-vue";
import VueI18nPlugin from "@intlify/unplugin-vue-i18n/vite";
import { defineConfig } from "vite";
import { VitePWA } from "vite-plugin-pwa";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  base: "/app/",
  build: {
    outDir: here("../server/static/app"),
    emptyOutDir: true,
    target: "es2022",
    // No inline data: URLs, so the Content-Security-Policy can stay 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  plugins: [
    vue(),
    // Messages compiled at build time: the runtime has no message compiler and needs no eval (CSP-safe).
    VueI18nPlugin({
      include: [here("./src/locales/**")],
      runtimeOnly: true,
      compositionOnly: true,
      fullInstall: false,
      strictMessage: true,
      escapeHtml: true,
    }),
    VitePWA({
      strategies: "injectManifest",
      srcDir: "src",
      filename: "sw.ts",
      injectRegister: false,
      registerType: "prompt",
      scope: "/app/",
      base: "/app/",
      manifest: {
        name: "Branch audit",
        short_name: "Audit",
        description: "Branch inspections and mystery visits, offline first",
        start_url: "/app/",
        scope: "/app/",
        display: "standalone",
        background_color: "#ffffff",
        theme_color: "#1f4e79",
        icons: [
          { src: "icon-192.png", sizes: "192x192", type: "image/png" },
          { src: "icon-512.png", sizes: "512x512", type: "image/png" },
          { src: "icon.svg", sizes: "any", type: "image/svg+xml" },
        ],
      },
      injectManifest: {
        globPatterns: ["**/*.{js,css,html,svg,png,webmanifest}"],
        maximumFileSizeToCacheInBytes: 3 * 1024 * 1024,
      },
      devOptions: { enabled: false },
    }),
  ],
});
