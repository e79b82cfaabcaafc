import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // A hold reserves one amount against the key's limit (`amount_micro`) and another against the payer's balance: a
  // key capped at a tiny remaining limit must still reserve the request's whole estimate at its payer, or many such
  // keys together overrun the payer. Holds placed before this migration reserved the same amount at both.
  await knex.schema.alterTable('holds', (t) => {
    t.bigInteger('payer_amount_micro').notNullable().defaultTo(0);
  });
  await knex('holds').update({ payer_amount_micro: knex.ref('amount_micro') });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('holds', (t) => {
    t.dropColumn('payer_amount_micro');
  });
}
