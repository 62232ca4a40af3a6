import { LevelRaftStorage } from "../../src/storage/level-raft-storage.js";
import { describeRaftStorageCompliance } from "./raft-storage-compliance.js";
import { makeTempDir, removeDir } from "./helpers.js";

describeRaftStorageCompliance("LevelRaftStorage", async () => {
  const dir = await makeTempDir("level-compliance");
  const storage = await LevelRaftStorage.open(dir);
  return {
    storage,
    dispose: async () => {
      await storage.close();
      await removeDir(dir);
    },
  };
});
