import { AppConfig } from './app-config';

/** What the start output must say loudly: settings that hand something out to whoever can connect. */
export function startWarnings(config: AppConfig): string[] {
  const warnings: string[] = [];
  const demo = `http://${config.host}:${config.port}/demo`;
  if (config.demo.enabled) {
    warnings.push(
      `the web demo is ON at ${demo}: anyone who can reach it can mint device tokens (user demo-user, devices demo-*). ` +
        'Set DEMO_ENABLED=false to turn it off.',
    );
  }
  if (config.demo.shareApiKey) {
    const why = config.generated.API_KEYS ? 'generated for this run' : 'DEMO_SHARE_API_KEY=true';
    warnings.push(`the web demo HANDS OUT THE API KEY (${why}) to anyone who opens ${demo}.`);
  }
  if (config.isProduction && !config.http.opsToken) {
    warnings.push('OPS_TOKEN is not set: /metrics, /docs, /docs-json and /asyncapi.json answer anyone who can reach the port.');
  }
  return warnings;
}
