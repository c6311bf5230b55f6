#!/usr/bin/env node
// The CDK app: one stack per stage, the same system as template.yaml (SAM). Settings come from
// the CDK context (`cdk deploy -c stage=prod -c alarmEmail=ops@example.com`), see lib/settings.ts.
import { App } from 'aws-cdk-lib';
import { CobroStack } from '../lib/cobro-stack';
import { settingsFromContext } from '../lib/settings';

// COBRO_CDK_SKIP_BUNDLING=1 (make test): synthesize without building the Rust binaries. The CLI
// refuses user context keys starting with aws:, so the app sets this one itself.
const skipBundling = process.env.COBRO_CDK_SKIP_BUNDLING === '1';
const app = new App(skipBundling ? { postCliContext: { 'aws:cdk:bundling-stacks': [] } } : {});
const settings = settingsFromContext((key) => app.node.tryGetContext(key));
new CobroStack(app, `cobro-${settings.stage}`, {
  settings,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
