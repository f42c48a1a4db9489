export { DatabaseModule } from './database.module';
export { SqliteDatabase, DatabaseOpenError, DATABASE_FILE } from './sqlite-database';
