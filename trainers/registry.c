/*
 * registry.c - pd_family_find (family.h): the table of every model family
 * built into podium-train, looked up by its spec name.
 */
#include <stddef.h>
#include <string.h>

#include "trainers/cnn.h"
#include "trainers/darts.h"
#include "trainers/ensemble.h"
#include "trainers/family.h"
#include "trainers/forest.h"
#include "trainers/gbm.h"
#include "trainers/knn.h"
#include "trainers/linear.h"
#include "trainers/mlp.h"
#include "trainers/nb.h"

static const struct pd_family *const FAMILIES[] = {
    &pd_family_linear, &pd_family_rf, &pd_family_extratrees, &pd_family_gbm,
    &pd_family_knn, &pd_family_nb, &pd_family_mlp, &pd_family_cnn, &pd_family_darts,
    /* only built from an {"ensemble": ...} spec; listed so model files load */
    &pd_family_ensemble,
};

const struct pd_family *pd_family_find(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (strcmp(FAMILIES[i]->name, name) == 0) return FAMILIES[i];
    return NULL;
}
