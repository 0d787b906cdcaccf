import { defineConfig } from "vite";

// The dashboard is embedded into the hyperdial binary from web/dist (see crates/server/build.rs).
// `npm run dev` proxies the API to a local `hyperdial server` on :8765.
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    chunkSizeWarningLimit: 1200,
    reportCompressedSize: false,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8765" },
  },
});
