export { DatabaseModule } from './database.module';
export { DATABASE_OPTIONS, type DatabaseModuleOptions } from './database.module-definition';
export { SqliteDatabase, DatabaseOpenError, DatabaseLockedError, DATABASE_FILE } from './sqlite-database';
